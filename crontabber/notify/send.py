"""Sending notifications (a webhook's JSON POST, an e-mail, a ping); the ``[notify]`` options.

A sender delivers one event or raises :class:`DeliveryError`, whose ``retry`` says whether
trying later may help. No secret leaves this module: the SMTP password and a URL's userinfo,
path and query (Slack's token is its path) are in no message, return value or ``repr``.
Messages are made here from status codes, exception classes and errno texts, with
:func:`redact`'s URL; the libraries' exceptions, whose text may hold the URL, are not chained.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import re
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from crontabber.config.options import parse_boolean
from crontabber.errors import ConfigError
from crontabber.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

EVENT_KINDS = ("failed", "recovered", "late", "stuck", "auto_paused")
_PLAIN_WORD = re.compile(r"[a-z][a-z_-]{0,15}")  # a path segment redact() shows


@record
class NotifySettings:
    """The ``[notify]`` section as plain values; the secrets are left out of ``repr``."""

    webhook_url: str = field(default="", repr=False)
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = True
    smtp_ssl: bool = False  # TLS from the start (SMTPS); smtp_starttls is then unused
    email_from: str = ""
    email_to: tuple[str, ...] = ()
    events: frozenset[str] = frozenset(EVENT_KINDS)  # the kinds that are sent
    repeat_after: float = 3600.0  # seconds
    late_after: float = 300.0
    stuck_after: float = 0.0
    tick_ping_url: str = field(default="", repr=False)
    timeout: float = 10.0

    @property
    def sinks(self) -> tuple[str, ...]:
        """``"webhook"`` when webhook_url is set, ``"email"`` when smtp_host and email_to are."""
        email = ("email",) if self.smtp_host and self.email_to else ()
        return (("webhook",) if self.webhook_url else ()) + email


class DeliveryError(Exception):
    """One line, with no secret in it; ``retry``: worth trying again (a timeout, a
    refused connection, a 5xx or 429), else not (another 4xx, a rejected address...);
    ``option``: the ``notify.*`` option to look at, when one is to blame."""

    def __init__(self, message: str, *, retry: bool, option: str = "") -> None:
        super().__init__(message)
        self.retry = retry
        self.option = option


def send_webhook(url: str, payload: dict, *, timeout: float) -> None:
    """POST ``payload`` as JSON to ``url``; a 2xx is delivered, anything else raises."""
    _request(url, json.dumps(payload).encode("utf-8"), timeout, f"webhook {redact(url)}")


def webhook_text(text: str) -> str:
    """``text`` as Slack's formatting (and Mattermost's, which reads Slack's) shows it as
    written: ``&``, ``<`` and ``>`` become the entities those decode. Unescaped, a job's
    name or error could mention ``<!channel>`` or make ``<http://...|a link>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ping(url: str, suffix: str = "", *, timeout: float = 5.0) -> str | None:
    """GET ``url`` + ``suffix`` (Healthchecks.io: ``""`` success, ``"/start"``,
    ``"/fail"``): None on a 2xx, else one line saying why. Never raises."""
    shown = f"ping {redact(url)}{suffix}"
    try:
        parts = urllib.parse.urlsplit(url)
        path = parts.path.rstrip("/") + suffix
        _request(parts._replace(path=path).geturl(), None, timeout, shown)
    except DeliveryError as exc:
        return str(exc)
    except Exception as exc:
        return f"{shown}: {type(exc).__name__}"
    return None


def redact(url: str) -> str:
    """``url`` fit for a log: ``scheme://host[:port]`` and its path, ``/…`` when that has
    more than one segment or one that is not a plain lowercase word (it may be a token);
    no userinfo, query or fragment. ``…`` when it is not a URL."""
    parts = _split(url)
    if parts is None:
        return "…"
    host, port = parts.hostname or "", parts.port
    netloc = (f"[{host}]" if ":" in host else host) + ("" if port is None else f":{port}")
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) > 1 or (segments and not _PLAIN_WORD.fullmatch(segments[0])):
        return f"{parts.scheme}://{netloc}/…"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _split(url: str) -> urllib.parse.SplitResult | None:
    """``url``'s parts, None unless it is ``scheme://host...`` with a valid port."""
    try:
        parts = urllib.parse.urlsplit(str(url).strip())
        valid = bool(parts.scheme and parts.hostname) and parts.port != 0  # .port: a number?
    except ValueError:
        return None
    return parts if valid else None


def _url_problem(url: str) -> str | None:
    """Why ``url`` will not do for a webhook or ping, in words that quote none of it."""
    parts = _split(url)
    if parts is None or parts.scheme not in ("http", "https") or len(url.split()) != 1:
        return "must be an http:// or https:// URL with a host (and no spaces)"
    return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a redirect: urllib would turn the POST into a bare GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _request(url: str, data: bytes | None, timeout: float, shown: str) -> None:
    """POST ``data`` as JSON (GET when None) to ``url``; DeliveryError unless a 2xx."""
    problem = _url_problem(url)
    if problem:
        raise DeliveryError(f"{shown}: the URL {problem}", retry=False)
    parts = urllib.parse.urlsplit(url.strip())
    headers = {"User-Agent": "crontabber"} | ({"Content-Type": "application/json"} if data else {})
    if parts.username is not None:  # urllib takes user:password@ for a part of the host name
        user = urllib.parse.unquote(f"{parts.username}:{parts.password or ''}")
        headers["Authorization"] = f"Basic {base64.b64encode(user.encode()).decode()}"
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    request = urllib.request.Request(parts.geturl(), data, headers)
    try:
        with urllib.request.build_opener(_NoRedirects).open(request, timeout=timeout) as answer:
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's connection
        code, retry = exc.code, exc.code >= 500 or exc.code == 429
        phrase = http.client.responses.get(code, "")
        raise DeliveryError(f"{shown}: HTTP {code} {phrase}".rstrip(), retry=retry) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        reason, retry = _network_error(cause, timeout)
        raise DeliveryError(f"{shown}: {reason}", retry=retry) from None


def _network_error(exc: object, timeout: float) -> tuple[str, bool]:
    """What went wrong reaching a server, without the exception's text (it may hold the
    URL), and whether to try again."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s", True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}", False
    if isinstance(exc, (ValueError, http.client.InvalidURL)) or not isinstance(exc, Exception):
        return "the URL is not valid", False
    return getattr(exc, "strerror", None) or type(exc).__name__, True


def send_email(settings: NotifySettings, payload: dict) -> None:
    """Mail ``payload`` to ``settings.email_to``: its ``text`` as the subject, its fields
    as ``key: value`` lines; STARTTLS when smtp_starttls, login when smtp_user."""
    if not (settings.smtp_host and settings.email_from and settings.email_to):
        needed = "notify.smtp_host, notify.email_from and notify.email_to must be set"
        raise DeliveryError(f"email: {needed}", retry=False)
    text = str(payload.get("text") or payload.get("event")).removeprefix("crontabber: ")
    message = EmailMessage()
    message["Subject"] = _one_line(f"[crontabber] {text}", 150)
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(settings.email_from)[1].rpartition("@")[2] or "crontabber.invalid"
    message["Message-ID"] = make_msgid("crontabber", domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(
        "".join(f"{key}: {'' if value is None else value}\n" for key, value in payload.items())
    )
    try:
        smtp = _open_smtp(settings)
    except DeliveryError as exc:
        raise DeliveryError(f"email: {exc}", retry=exc.retry, option=exc.option) from None
    try:
        refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()
        where = f"email via {settings.smtp_host}:{settings.smtp_port}"
        raise _smtp_error(exc, settings.timeout, "", where) from None
    _quit(smtp)  # the server has the message: what it says to QUIT does not matter
    if refused:  # the others have it: trying again would send it to them twice
        got = ", ".join(f"{to} ({code})" for to, (code, _) in refused.items())
        raise DeliveryError(f"email: refused {got}", retry=False, option="notify.email_to")


def _open_smtp(settings: NotifySettings) -> smtplib.SMTP:
    """A connection to the SMTP server, over TLS from the start (smtp_ssl) or after
    STARTTLS, and logged in, as configured."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    option, doing = "notify.smtp_host", f"cannot reach {where}"
    try:  # SMTP(host) connects; TLS checks the certificate against that host
        if settings.smtp_ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
    except (smtplib.SMTPException, OSError) as exc:
        if isinstance(exc, ssl.SSLError):  # reached, but no TLS from the start
            option, doing = "notify.smtp_ssl", f"TLS (SMTPS) with {where}"
        raise _smtp_error(exc, settings.timeout, option, doing) from None
    try:
        smtp.ehlo()
        if settings.smtp_starttls and not settings.smtp_ssl:
            option, doing = "notify.smtp_starttls", f"STARTTLS with {where}"
            if not smtp.has_extn("starttls"):
                problem = f"the SMTP server does not offer STARTTLS ({where})"
                raise DeliveryError(problem, retry=False, option=option)
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            option, doing = "notify.smtp_user", f"login to {where}"
            smtp.login(settings.smtp_user, settings.smtp_password)
    except (smtplib.SMTPException, OSError, DeliveryError) as exc:
        smtp.close()
        if isinstance(exc, DeliveryError):
            raise
        raise _smtp_error(exc, settings.timeout, option, doing) from None
    return smtp


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _smtp_error(exc: BaseException, timeout: float, option: str, doing: str) -> DeliveryError:
    """``exc`` in words: the server's reply codes, never its text (it may echo a login)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients.items()
        reason = "refused " + ", ".join(f"{to} ({code})" for to, (code, _) in refused)
        retry, option = all(400 <= code < 500 for _, (code, _) in refused), "notify.email_to"
    elif isinstance(exc, smtplib.SMTPResponseException):
        sender = isinstance(exc, smtplib.SMTPSenderRefused)
        reason = f"the server {'refused the sender' if sender else 'answered'} {exc.smtp_code}"
        retry, option = 400 <= exc.smtp_code < 500, "notify.email_from" if sender else option
    elif isinstance(exc, smtplib.SMTPServerDisconnected):  # a timeout, among others
        reason, retry = "the server closed the connection", True
        if isinstance(exc.__context__, OSError):
            reason = _network_error(exc.__context__, timeout)[0]
    elif isinstance(exc, smtplib.SMTPException):  # no common AUTH mechanism, no SMTPUTF8...
        reason, retry = type(exc).__name__, False
    else:
        reason, retry = _network_error(exc, timeout)
    return DeliveryError(f"{doing}: {reason}", retry=retry, option=option)


def check(settings: NotifySettings, *, connect: bool) -> list[str]:
    """What is wrong with ``settings``, one line each naming the option; with
    ``connect``, whether the SMTP server is reached (STARTTLS and login as configured)."""
    problems = []
    for name in ("webhook_url", "tick_ping_url"):
        problem = getattr(settings, name) and _url_problem(getattr(settings, name))
        if problem:
            problems.append(f"notify.{name}: {problem}")
    email = {"smtp_host": settings.smtp_host, "email_from": settings.email_from}
    email["email_to"] = settings.email_to
    given = " and ".join(f"notify.{name}" for name, value in email.items() if value)
    for name, value in email.items():
        if given and not value:
            problems.append(f"notify.{name}: needed to send email ({given} set)")
    if settings.smtp_password and not settings.smtp_user:
        problems.append("notify.smtp_password: set, but notify.smtp_user is not")
    if connect and settings.smtp_host:
        try:
            _quit(_open_smtp(settings))
        except DeliveryError as exc:
            problems.append(f"{exc.option}: {exc}")
    return problems


def notify_settings_from(values: Mapping[str, Any]) -> NotifySettings:
    """The settings from the ``[notify]`` options as read, text or converted values;
    ``email_to`` and ``events`` a list or comma-separated (``events`` missing or empty:
    every kind). A bad value is a :class:`ConfigError` naming its option."""
    names = NotifySettings.__match_args__
    text = {name: _text(values.get(name)) for name in names if values.get(name) not in (None, "")}
    given: dict[str, Any] = {name: value.strip() for name, value in text.items()}
    if "smtp_password" in text:
        given["smtp_password"] = text["smtp_password"]  # spaces kept
    given["email_to"] = _items(given.get("email_to", ""))
    given["events"] = frozenset(_items(given.get("events", "")) or EVENT_KINDS)
    unknown = sorted(given["events"] - set(EVENT_KINDS))
    if unknown:
        known = ", ".join(EVENT_KINDS)
        raise ConfigError(f"notify.events: unknown event {unknown[0]!r} (known: {known})")
    for name in ("smtp_starttls", "smtp_ssl"):
        if name in given:
            try:
                given[name] = parse_boolean(word := given[name])
            except ValueError:
                raise ConfigError(f"notify.{name}: {word!r} is not true or false") from None
    for name, (convert, low, high, must) in _NUMBERS.items():
        if name in given:
            try:
                number = convert(given[name])
            except ValueError:
                number = math.nan
            if not low <= number <= high:
                raise ConfigError(f"notify.{name} must be {must}, not {text[name]!r}")
            given[name] = number
    return NotifySettings(**given)


_NUMBERS = {  # option: (type, lowest, highest, in words)
    "smtp_port": (int, 1, 65535, "a port number from 1 to 65535"),
    "repeat_after": (float, 0.0, math.inf, "a number of seconds, at least 0"),
    "late_after": (float, 0.0, math.inf, "a number of seconds, at least 0"),
    "stuck_after": (float, 0.0, math.inf, "a number of seconds, at least 0"),
    "timeout": (float, math.ulp(0.0), math.inf, "a number of seconds, more than 0"),
}


def _text(value: object) -> str:
    """A text value: configobj splits an unquoted one on its commas, joined back here."""
    return (
        ",".join(map(str, value))
        if isinstance(value, list | tuple | set | frozenset)
        else str(value)
    )


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def payload_text(
    kind: str, app_name: str, host: str, when: str, error: str | None, *, failures: int = 0
) -> str:
    """The event in one line, e.g. ``crontabber: nightly failed on web-1 at 2026-12-06
    03:00 UTC: RuntimeError: disk full``. For ``stuck``, ``error`` says where it runs
    (else: on ``host``); for ``auto_paused``, ``failures`` is how many in a row."""
    error = _one_line(error, 300) if error else ""
    reason = f": {error}" if error else ""
    after = f"after {failures} failures in a row" if failures else "after failing"
    texts = {
        "failed": f"{app_name} failed on {host} at {when}{reason}",
        "recovered": f"{app_name} recovered on {host} at {when}",
        "late": f"{app_name} is late: due at {when} and not started",
        "stuck": f"{app_name} is stuck: {error or f'running on {host}'} since {when}",
        "auto_paused": f"{app_name} was paused {after} on {host} at {when}{reason}",
    }
    if kind not in texts:
        raise ValueError(f"unknown event kind {kind!r}")
    return f"crontabber: {texts[kind]}"


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
