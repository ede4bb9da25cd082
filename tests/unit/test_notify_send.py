"""The notification senders (crontabber/notify/send.py) against real receivers on
127.0.0.1: an HTTP server in a thread, aiosmtpd's SMTP server (plain, with a login,
with STARTTLS), a port nobody listens on and a server that never answers. And what
no message may hold: the SMTP password, a URL's userinfo, path or query."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from crontabber.errors import ConfigError
from crontabber.notify.send import (
    EVENT_KINDS,
    DeliveryError,
    NotifySettings,
    check,
    notify_settings_from,
    payload_text,
    ping,
    redact,
    send_email,
    send_webhook,
)
from crontabber.record import replace

from ..helpers.missing import skip_or_fail

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:  # the fixtures say so: a skip, or a failure under CI=true
    Controller = AuthResult = None

# What may appear in no message: a webhook URL's userinfo, token path and query.
UUID = "5f3e9c4e-7b1a-4a51-9b61-2f1d2b9a7c11"  # a Healthchecks.io ping URL's secret
SECRETS = ("hunter2", "T000", "B000", "XXXXTOKEN", "QUERYSECRET", "5f3e9c4e")
PASSWORD = "hunter2-pw"
PAYLOAD = {
    "id": 7,
    "event": "failed",
    "app_name": "nightly",
    "host": "web-1",
    "when": "2026-12-06T03:00:00+00:00",
    "error": "RuntimeError: disk full",
    "text": "crontabber: nightly failed on web-1 at 2026-12-06 03:00 UTC: RuntimeError: disk full",
}


def assert_no_secret(text: str) -> None:
    for secret in (*SECRETS, PASSWORD):
        assert secret not in text, (secret, text)


def assert_clean(error: DeliveryError) -> None:
    """One line, no secret, and no chained exception whose text could hold one."""
    message = str(error)
    assert "\n" not in message
    assert_no_secret(message)
    assert_no_secret(repr(error))
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


# --- receivers ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib heeds the proxy variables: the receivers are on this machine."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Received:
    """The requests an HTTP receiver got."""

    def __init__(self) -> None:
        self.requests: list[Request] = []


@pytest.fixture
def web() -> Iterator[tuple[str, Received]]:
    """An HTTP server on 127.0.0.1: ``/status/CODE/...`` answers CODE, anything else 200."""
    received = Received()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            received.requests.append(Request(self.command, self.path, headers, body))
            parts = self.path.split("/")
            code = int(parts[2]) if parts[1] == "status" else 200
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = answer

        def log_message(self, *args: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", received
        finally:
            server.shutdown()
            thread.join()


def free_port() -> int:
    """A port nothing listens on (a connection to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


class Inbox:
    """What an SMTP server accepted; recipients in ``refuse`` are refused with 550."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse = refuse
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"robot" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_server(inbox: Inbox, **options: Any) -> Iterator[int]:
    """aiosmtpd on 127.0.0.1 in a thread; its port."""
    if Controller is None:
        skip_or_fail("aiosmtpd is not installed (pip install aiosmtpd)")
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, server_hostname="mx.test", **options
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def mail_settings(port: int, **changes: Any) -> NotifySettings:
    base = NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        email_from="crontabber@example.com",
        email_to=("ops@example.com",),
        timeout=5.0,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail("no openssl command to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    ca, ca_key, cert, key = (where / name for name in ("ca.pem", "ca.key", "cert.pem", "key.pem"))
    run = [openssl, "req", "-nodes", "-newkey", "rsa:2048", "-days", "2"]
    subprocess.run(
        [*run, "-x509", "-subj", "/CN=test CA", "-keyout", ca_key, "-out", ca,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    request = where / "cert.csr"
    subprocess.run(
        [*run, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", request],
        check=True, capture_output=True,
    )  # fmt: skip
    extensions = where / "ext.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(
        [openssl, "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return ca, cert, key


# --- the webhook --------------------------------------------------------------------------


def test_a_webhook_posts_the_payload_as_json(web: tuple[str, Received]) -> None:
    base, received = web
    send_webhook(f"{base}/services/T000/B000/XXXXTOKEN", PAYLOAD, timeout=5)
    [(method, path, headers, body)] = received.requests
    assert (method, path) == ("POST", "/services/T000/B000/XXXXTOKEN")
    assert headers["Content-Type"].split(";")[0] == "application/json"
    assert "Authorization" not in headers
    assert json.loads(body) == PAYLOAD


def test_a_url_with_a_user_and_password_logs_in(web: tuple[str, Received]) -> None:
    base, received = web
    send_webhook(base.replace("//", "//robot:p%40ss@") + "/hook?x=1", PAYLOAD, timeout=5)
    [request] = received.requests
    assert request.path == "/hook?x=1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"robot:p@ss").decode()


@pytest.mark.parametrize(("code", "retry"), [(500, True), (503, True), (429, True), (404, False),
                                             (400, False), (403, False)])  # fmt: skip
def test_an_http_error_says_its_status_and_whether_to_retry(
    web: tuple[str, Received], code: int, retry: bool
) -> None:
    base, _ = web
    host = base.removeprefix("http://")
    url = f"http://user:hunter2@{host}/status/{code}/T000/B000/XXXXTOKEN?key=QUERYSECRET"
    with pytest.raises(DeliveryError) as raised:
        send_webhook(url, PAYLOAD, timeout=5)
    assert raised.value.retry is retry
    assert f"HTTP {code}" in str(raised.value)
    assert f"{base}/…" in str(raised.value)
    assert_clean(raised.value)


def test_a_redirect_is_an_error_not_a_lost_post(web: tuple[str, Received]) -> None:
    base, received = web
    with pytest.raises(DeliveryError) as raised:
        send_webhook(f"{base}/status/302/XXXXTOKEN", PAYLOAD, timeout=5)
    assert raised.value.retry is False
    assert "HTTP 302" in str(raised.value)
    assert [request[:2] for request in received.requests] == [("POST", "/status/302/XXXXTOKEN")]
    assert_clean(raised.value)


def test_a_refused_connection_is_worth_retrying() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXTOKEN?x=QUERYSECRET"
    with pytest.raises(DeliveryError) as raised:
        send_webhook(url, PAYLOAD, timeout=5)
    assert raised.value.retry is True
    assert "Connection refused" in str(raised.value)
    assert_clean(raised.value)


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/services/T000/B000/XXXXTOKEN"
    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        send_webhook(url, PAYLOAD, timeout=0.5)
    assert time.monotonic() - started < 30  # generous: the point is that it returns
    assert raised.value.retry is True
    assert "timed out after 0.5s" in str(raised.value)
    assert_clean(raised.value)


@pytest.mark.parametrize(
    "url",
    ["ftp://user:hunter2@example.com/XXXXTOKEN", "hooks.slack.com/services/T000/B000/XXXXTOKEN",
     "http://example.com:99999/XXXXTOKEN", "http:///XXXXTOKEN", "http://exa mple.com/XXXXTOKEN"],
)  # fmt: skip
def test_a_url_that_is_no_http_url_is_not_retried(url: str) -> None:
    with pytest.raises(DeliveryError) as raised:
        send_webhook(url, PAYLOAD, timeout=5)
    assert raised.value.retry is False
    assert_clean(raised.value)


# --- pings --------------------------------------------------------------------------------


def test_pings_hit_the_url_and_its_start_and_fail_paths(web: tuple[str, Received]) -> None:
    base, received = web
    url = f"{base}/ping/{UUID}"
    assert [ping(url, "/start", timeout=5), ping(url, timeout=5), ping(url, "/fail")] == [None] * 3
    assert [request[:2] for request in received.requests] == [
        ("GET", f"/ping/{UUID}/start"),
        ("GET", f"/ping/{UUID}"),
        ("GET", f"/ping/{UUID}/fail"),
    ]
    assert ping(f"{base}/ping/{UUID}/?rid=1", "/start") is None
    assert received.requests[-1].path == f"/ping/{UUID}/start?rid=1"


def test_a_failed_ping_is_one_line_without_the_url(web: tuple[str, Received]) -> None:
    base, _ = web
    problem = ping(f"{base}/status/404/{UUID}", "/fail", timeout=5)
    assert problem == f"ping {base}/…/fail: HTTP 404 Not Found"
    refused = ping(f"http://127.0.0.1:{free_port()}/{UUID}", timeout=5)
    assert refused is not None
    assert "Connection refused" in refused
    for problem in (refused, ping(f"not a URL/{UUID}"), ping(f"http://[::1/{UUID}")):
        assert problem is not None
        assert "\n" not in problem
        assert_no_secret(problem)


# --- e-mail -------------------------------------------------------------------------------


def test_an_email_arrives_with_the_subject_and_the_fields() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        settings = mail_settings(port, email_to=("ops@example.com", "dev@example.com"))
        send_email(settings, PAYLOAD)
    [(recipients, message)] = inbox.messages
    assert recipients == ["ops@example.com", "dev@example.com"]
    assert message["Subject"] == (
        "[crontabber] nightly failed on web-1 at 2026-12-06 03:00 UTC: RuntimeError: disk full"
    )
    assert message["From"] == "crontabber@example.com"
    assert message["Date"] and message["Message-ID"].endswith("@example.com>")
    body = message.get_content().replace("\r\n", "\n")
    assert "app_name: nightly\n" in body
    assert "error: RuntimeError: disk full\n" in body
    assert "id: 7\n" in body


def test_a_long_subject_is_trimmed_and_none_is_empty() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        send_email(mail_settings(port), {**PAYLOAD, "text": "x " * 200, "error": None})
    [(_, message)] = inbox.messages
    assert len(message["Subject"]) <= 150
    assert message["Subject"].endswith("…")
    assert "\nerror: \r\n" in message.get_content()


def test_starttls_against_a_server_without_it_is_not_retried() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port, pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(port, smtp_starttls=True), PAYLOAD)
    assert raised.value.retry is False
    assert "the SMTP server does not offer STARTTLS" in str(raised.value)
    assert inbox.messages == []


def test_login_with_a_password() -> None:
    inbox = Inbox()
    options = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    with smtp_server(inbox, **options) as port:
        send_email(mail_settings(port, smtp_user="robot", smtp_password=PASSWORD), PAYLOAD)
    assert inbox.logins == [(b"robot", PASSWORD.encode())]
    assert len(inbox.messages) == 1


def test_a_refused_login_says_so_without_the_password() -> None:
    inbox = Inbox()
    options = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    wrong = mail_settings(0, smtp_user="robot", smtp_password=PASSWORD + "-wrong")
    with smtp_server(inbox, **options) as port, pytest.raises(DeliveryError) as raised:
        send_email(replace(wrong, smtp_port=port), PAYLOAD)
    assert raised.value.retry is False
    assert "login" in str(raised.value) and "535" in str(raised.value)
    assert raised.value.option == "notify.smtp_user"
    assert_clean(raised.value)
    assert inbox.messages == []


def test_a_login_the_server_does_not_offer_is_an_error() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port, pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(port, smtp_user="robot", smtp_password=PASSWORD), PAYLOAD)
    assert raised.value.retry is False
    assert_clean(raised.value)


@pytest.mark.parametrize("smtps", [False, True], ids=["starttls", "smtps"])
def test_tls_and_login_with_a_trusted_certificate(
    certificates: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, smtps: bool
) -> None:
    """STARTTLS, or with smtp_ssl TLS from the first byte (port 465's way, no STARTTLS
    asked for): refused until the certificate's CA is trusted, then a login."""
    import ssl

    ca, cert, key = certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    settings = dict(smtp_ssl=smtps, smtp_starttls=True, smtp_user="robot", smtp_password=PASSWORD)
    options: dict[str, Any] = {"authenticator": inbox.authenticate}
    if smtps:  # aiosmtpd counts only STARTTLS as TLS for AUTH: here the whole connection is
        options.update(ssl_context=context, auth_require_tls=False)
    else:
        options.update(tls_context=context)
    with smtp_server(inbox, **options) as port:
        with pytest.raises(DeliveryError) as raised:  # the CA is not trusted yet
            send_email(mail_settings(port, **settings), PAYLOAD)
        assert raised.value.retry is False
        assert raised.value.option == ("notify.smtp_ssl" if smtps else "notify.smtp_starttls")
        assert "certificate" in str(raised.value)
        assert_clean(raised.value)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        send_email(mail_settings(port, **settings), PAYLOAD)
    assert inbox.logins == [(b"robot", PASSWORD.encode())]
    assert len(inbox.messages) == 1


def test_smtps_against_a_plain_server_names_the_option() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port, pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(port, smtp_ssl=True), PAYLOAD)
    assert raised.value.option == "notify.smtp_ssl"
    assert str(raised.value).startswith(f"email: TLS (SMTPS) with 127.0.0.1:{port}: ")
    assert inbox.messages == []
    # No server at all is the host's or the port's fault, not TLS's.
    with pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(free_port(), smtp_ssl=True), PAYLOAD)
    assert raised.value.option == "notify.smtp_host" and raised.value.retry is True


def test_refused_recipients() -> None:
    inbox = Inbox(refuse=("gone@example.com",))
    with smtp_server(inbox) as port:
        with pytest.raises(DeliveryError) as raised:
            send_email(mail_settings(port, email_to=("gone@example.com",)), PAYLOAD)
        assert raised.value.retry is False
        assert "gone@example.com (550)" in str(raised.value)
        assert inbox.messages == []
        both = ("ops@example.com", "gone@example.com")
        with pytest.raises(DeliveryError) as raised:  # the others have it: not retried
            send_email(mail_settings(port, email_to=both), PAYLOAD)
        assert raised.value.retry is False
        assert "gone@example.com (550)" in str(raised.value)
    assert [recipients for recipients, _ in inbox.messages] == [["ops@example.com"]]


def test_an_unreachable_or_silent_smtp_server_is_worth_retrying(silent_port: int) -> None:
    with pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(free_port(), smtp_password=PASSWORD), PAYLOAD)
    assert raised.value.retry is True
    assert "Connection refused" in str(raised.value)
    assert_clean(raised.value)
    with pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(silent_port, timeout=0.5), PAYLOAD)
    assert raised.value.retry is True
    assert "timed out after 0.5s" in str(raised.value)


def test_email_without_a_sender_is_not_retried() -> None:
    with pytest.raises(DeliveryError) as raised:
        send_email(mail_settings(free_port(), email_from=""), PAYLOAD)
    assert raised.value.retry is False
    assert "notify.email_from" in str(raised.value)


# --- redact, check ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/…"),
        ("https://hc-ping.com/5f3e9c4e-7b1a-4a51-9b61-2f1d2b9a7c11", "https://hc-ping.com/…"),
        ("https://user:pw@Example.com:8443/hook?token=abc#x", "https://example.com:8443/hook"),
        ("https://example.com/Ab3kd9", "https://example.com/…"),
        ("http://example.com", "http://example.com"),
        ("https://example.com/", "https://example.com/"),
        ("https://[::1]:8080/a/b", "https://[::1]:8080/…"),
        ("https://example.com:port/x", "…"),
        ("hooks.slack.com/services/T000/B000/XXXX", "…"),
        ("", "…"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_check_finds_nothing_wrong_with_the_defaults_or_a_full_setup() -> None:
    assert check(NotifySettings(), connect=False) == []
    full = NotifySettings(
        webhook_url="https://hooks.slack.com/services/T000/B000/XXXXTOKEN",
        tick_ping_url=f"https://hc-ping.com/{UUID}",
        smtp_host="smtp.example.com",
        smtp_user="robot",
        smtp_password=PASSWORD,
        email_from="Crontabber <crontabber@example.com>",
        email_to=("ops@example.com",),
    )
    assert check(full, connect=False) == []


def test_check_names_bad_urls_without_their_secrets() -> None:
    settings = NotifySettings(
        webhook_url="ftp://user:hunter2@example.com/T000/B000/XXXXTOKEN",
        tick_ping_url=f"hc-ping.com/{UUID}?x=QUERYSECRET",
    )
    problems = check(settings, connect=False)
    assert [line.split(":")[0] for line in problems] == [
        "notify.webhook_url",
        "notify.tick_ping_url",
    ]
    for line in problems:
        assert "http://" in line and "\n" not in line
        assert_no_secret(line)


def test_check_wants_all_of_the_email_options_or_none() -> None:
    problems = check(NotifySettings(email_to=("ops@example.com",)), connect=False)
    assert [line.split(":")[0] for line in problems] == ["notify.smtp_host", "notify.email_from"]
    problems = check(NotifySettings(smtp_host="smtp.example.com"), connect=False)
    assert [line.split(":")[0] for line in problems] == ["notify.email_from", "notify.email_to"]
    problems = check(NotifySettings(smtp_password=PASSWORD), connect=False)
    assert problems == ["notify.smtp_password: set, but notify.smtp_user is not"]


def test_check_reaches_the_smtp_server_only_when_asked() -> None:
    port = free_port()
    settings = mail_settings(port, smtp_user="robot", smtp_password=PASSWORD)
    assert check(settings, connect=False) == []
    [problem] = check(settings, connect=True)
    assert problem.startswith(f"notify.smtp_host: cannot reach 127.0.0.1:{port}: ")
    assert problem.endswith("Connection refused")
    assert_no_secret(problem)


def test_check_logs_in_and_says_what_the_server_lacks() -> None:
    inbox = Inbox()
    options = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    with smtp_server(inbox, **options) as port:
        good = mail_settings(port, smtp_user="robot", smtp_password=PASSWORD)
        assert check(good, connect=True) == []
        [problem] = check(replace(good, smtp_password=PASSWORD + "-wrong"), connect=True)
        assert problem.startswith("notify.smtp_user: login to 127.0.0.1:")
        assert_no_secret(problem)
        [problem] = check(replace(good, smtp_starttls=True), connect=True)
        assert problem.startswith("notify.smtp_starttls: the SMTP server does not offer STARTTLS")
    assert inbox.messages == []


# --- the [notify] options -----------------------------------------------------------------


def test_the_options_default_to_the_settings_defaults() -> None:
    assert notify_settings_from({}) == NotifySettings()
    assert notify_settings_from({"events": "", "smtp_port": "", "timeout": None}) == (
        NotifySettings()
    )
    assert NotifySettings().events == frozenset(EVENT_KINDS)


def test_the_options_from_text() -> None:
    settings = notify_settings_from(
        {
            "webhook_url": " https://example.com/hook ",
            "smtp_host": "smtp.example.com",
            "smtp_port": "2525",
            "smtp_starttls": "no",
            "smtp_ssl": "yes",
            "smtp_password": " pass word ",
            "email_to": "a@example.com, b@example.com",
            "events": "failed,recovered",
            "late_after": "60",
            "stuck_after": "7200",
            "timeout": "2.5",
        }
    )
    assert settings == NotifySettings(
        webhook_url="https://example.com/hook",
        smtp_host="smtp.example.com",
        smtp_port=2525,
        smtp_starttls=False,
        smtp_ssl=True,
        smtp_password=" pass word ",
        email_to=("a@example.com", "b@example.com"),
        events=frozenset({"failed", "recovered"}),
        late_after=60.0,
        stuck_after=7200.0,
        timeout=2.5,
    )
    assert settings.sinks == ("webhook", "email")


def test_the_options_as_configobj_lists_or_converted_values() -> None:
    """configobj splits an unquoted value on its commas: a password keeps them."""
    settings = notify_settings_from(
        {
            "email_to": ["a@example.com", " b@example.com"],
            "events": ["failed", "late"],
            "smtp_password": ["pass", "word"],
            "smtp_port": 25,
            "smtp_starttls": False,
            "repeat_after": 0,
        }
    )
    assert settings.email_to == ("a@example.com", "b@example.com")
    assert settings.events == frozenset({"failed", "late"})
    assert settings.smtp_password == "pass,word"
    assert (settings.smtp_port, settings.smtp_starttls, settings.repeat_after) == (25, False, 0)
    assert settings.sinks == ()


@pytest.mark.parametrize(
    ("values", "option"),
    [
        ({"smtp_port": "smtp"}, "notify.smtp_port"),
        ({"smtp_port": "0"}, "notify.smtp_port"),
        ({"smtp_port": 70000}, "notify.smtp_port"),
        ({"events": "failed, exploded"}, "notify.events"),
        ({"smtp_starttls": "maybe"}, "notify.smtp_starttls"),
        ({"smtp_ssl": "sometimes"}, "notify.smtp_ssl"),
        ({"late_after": "-1"}, "notify.late_after"),
        ({"repeat_after": "soon"}, "notify.repeat_after"),
        ({"stuck_after": "nan"}, "notify.stuck_after"),
        ({"timeout": "0"}, "notify.timeout"),
    ],
)
def test_a_bad_option_is_a_config_error_naming_it(values: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigError) as raised:
        notify_settings_from({**values, "smtp_password": PASSWORD})
    assert str(raised.value).startswith(option)
    assert "\n" not in str(raised.value)
    assert_no_secret(str(raised.value))


def test_the_secrets_are_not_in_the_settings_repr() -> None:
    settings = NotifySettings(
        webhook_url="https://hooks.slack.com/services/T000/B000/XXXXTOKEN",
        tick_ping_url=f"https://hc-ping.com/{UUID}",
        smtp_password=PASSWORD,
    )
    assert_no_secret(repr(settings))


# --- the text -----------------------------------------------------------------------------

WHEN = "2026-12-06 03:00 UTC"


@pytest.mark.parametrize(
    ("kind", "error", "text"),
    [
        ("failed", "RuntimeError: disk full",
         f"crontabber: nightly failed on web-1 at {WHEN}: RuntimeError: disk full"),
        ("recovered", None, f"crontabber: nightly recovered on web-1 at {WHEN}"),
        ("late", None, f"crontabber: nightly is late: due at {WHEN} and not started"),
        ("stuck", "running on web-2 pid 42",
         f"crontabber: nightly is stuck: running on web-2 pid 42 since {WHEN}"),
        ("stuck", None, f"crontabber: nightly is stuck: running on web-1 since {WHEN}"),
        ("auto_paused", "OSError: gone",
         f"crontabber: nightly was paused after failing on web-1 at {WHEN}: OSError: gone"),
    ],
)  # fmt: skip
def test_payload_text(kind: str, error: str | None, text: str) -> None:
    assert payload_text(kind, "nightly", "web-1", WHEN, error) == text


def test_payload_text_is_one_line() -> None:
    text = payload_text("auto_paused", "nightly", "web-1", WHEN, "a\n  b " * 100, failures=5)
    assert text.startswith("crontabber: nightly was paused after 5 failures in a row on web-1")
    assert "\n" not in text and len(text) < 400 and text.endswith("…")
    with pytest.raises(ValueError, match="exploded"):
        payload_text("exploded", "nightly", "web-1", WHEN, None)
