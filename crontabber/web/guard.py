"""Who may read the status page and who may act through it: the token, the page's
session cookie, its CSRF tokens, and the signed one-line results of its forms.

- The token (``web.auth_token``) comes as a bearer token (``Authorization:
  Bearer TOKEN``: Prometheus, scripts) or as the password of HTTP basic
  authentication (any user name: a browser). It is compared in constant time
  (:func:`hmac.compare_digest`) and never logged or echoed.
- With a token, a page that offers forms sets a session cookie, a random id
  (``HttpOnly; SameSite=Strict; Path=/``, and ``Secure`` over HTTPS). The cookie
  alone authorises nothing: every request still carries the token.
- A form's CSRF token is the HMAC-SHA256 of the session id under a secret of
  this application (random, made when it starts: a restart makes old forms
  fail with 403, and a reload mends them). A POST a browser may send by
  itself (basic authentication, which a browser repeats unasked) must carry
  the CSRF token of the session its cookie names; one with a bearer token
  needs none, as no browser adds that header to a request by itself.
- What a form did comes back in the redirect's query, signed the same way and
  bound to the session, so that nobody can make the page say what a link says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

from crontabber.record import record

SESSION_COOKIE = "crontabber_session"
CSRF_FIELD = "csrf_token"  # the form field, or the JSON key
CSRF_HEADER = "HTTP_X_CSRF_TOKEN"  # X-CSRF-Token, for scripts that post JSON with basic auth
MAX_USER = 64  # characters of a basic-auth user name kept for the audit log
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


@record
class Credential:
    """How a request carried the token: ``bearer`` or ``basic`` (with its user name)."""

    scheme: str
    user: str = ""

    @property
    def browser_sends_it_unasked(self) -> bool:
        """True for basic authentication: a browser repeats it on any request to the
        site, a forged one included, so such a POST must prove itself (CSRF)."""
        return self.scheme != "bearer"


class Guard:
    """The token check, sessions and CSRF tokens of one application."""

    def __init__(self, auth_token: str, secret: bytes | None = None) -> None:
        self.auth_token = auth_token
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    @property
    def acting(self) -> bool:
        """Whether anyone may act: only with a token configured."""
        return bool(self.auth_token)

    # --- the token ------------------------------------------------------------------

    def credential(self, environ: Mapping[str, Any]) -> Credential | None:
        """The credential that carries the right token; None when none does (or no
        token is configured)."""
        if not self.auth_token:
            return None
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        user, given = "", ""
        if scheme.lower() == "bearer":
            given = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, given = decoded.partition(":")
        if not hmac.compare_digest(given.encode("utf-8"), self.auth_token.encode("utf-8")):
            return None
        return Credential(scheme.lower(), printable(user)[:MAX_USER])

    def authorised(self, environ: Mapping[str, Any]) -> bool:
        """Everyone without a token configured; otherwise whoever gives it."""
        return not self.auth_token or self.credential(environ) is not None

    # --- the session and its CSRF token ---------------------------------------------

    def session_id(self, environ: Mapping[str, Any]) -> str | None:
        """The session id the request's cookie gives, if it is one this page makes."""
        value = cookies(environ.get("HTTP_COOKIE", "")).get(SESSION_COOKIE, "")
        return value if _SESSION_ID.fullmatch(value) else None

    def session(self, environ: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        """The request's session id, or a new one with the header that sets its cookie."""
        session_id = self.session_id(environ)
        if session_id is not None:
            return session_id, []
        session_id = secrets.token_urlsafe(32)
        secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
        cookie = f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict{secure}"
        return session_id, [("Set-Cookie", cookie)]

    def csrf_token(self, session_id: str) -> str:
        return self._mac("csrf", session_id)

    def csrf_ok(self, environ: Mapping[str, Any], given: str) -> bool:
        """Whether ``given`` is the CSRF token of the session the request's cookie names."""
        session_id = self.session_id(environ)
        if session_id is None or not given:
            return False
        expected = self.csrf_token(session_id)
        return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))

    # --- what a form did, carried through its redirect --------------------------------

    def sign(self, session_id: str, outcome: str, message: str) -> str:
        return self._mac("said", session_id, outcome, message)

    def signed(self, session_id: str | None, outcome: str, message: str, signature: str) -> bool:
        if session_id is None or not signature:
            return False
        expected = self.sign(session_id, outcome, message)
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))

    def _mac(self, purpose: str, *parts: str) -> str:
        text = "\0".join((purpose, *parts)).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()


def cookies(header: str) -> dict[str, str]:
    """A ``Cookie`` header's pairs; the first of a name wins, as browsers send the most
    specific first. Malformed pairs are skipped (other sites' cookies may be odd)."""
    found: dict[str, str] = {}
    for pair in header.split(";"):
        name, equals, value = pair.strip().partition("=")
        if equals and name:
            found.setdefault(name, value.strip().strip('"'))
    return found


def printable(text: str) -> str:
    return "".join(char for char in text if char.isprintable()).strip()
