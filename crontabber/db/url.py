"""State database URLs: read, turned into driver arguments, and shown without secrets.

``postgresql://user:password@host:port/dbname?...`` becomes psycopg2's keyword
arguments, ``sqlite:///path`` a file path; :func:`safe_url` masks a password
wherever a URL is shown. Errors never repeat a URL that may hold a password.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from crontabber.errors import StateStoreError
from crontabber.record import record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


@record
class DatabaseURL:
    """A parsed state database URL: ``postgresql://...`` or ``sqlite:///path``."""

    dialect: str  # "postgresql" or "sqlite"
    text: str  # as given
    connect_args: dict[str, Any]  # psycopg2 keywords, or {"database": path} for sqlite3

    @property
    def safe(self) -> str:
        return safe_url(self.text)


def safe_url(url: object) -> str:
    """The URL with any password masked, fit for messages and logs, whatever its form.

    A password in the user part and every secret query parameter (libpq's
    ``password`` and ``sslpassword``, and any whose name says password or secret)
    are masked; a URL that cannot be read is not shown at all.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            credentials, _, location = netloc.rpartition("@")
            user = credentials.split(":", 1)[0]
            netloc = f"{user}:***@{location}" if ":" in credentials else netloc
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if netloc == parts.netloc and not any(_secret(key) for key, _ in pairs):
            return text  # nothing to hide: as written
        query = "&".join(f"{key}={'***' if _secret(key) else value}" for key, value in pairs)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unreadable database URL>"


def _secret(parameter: str) -> bool:
    """Whether a connection parameter holds a secret (libpq shows them as ``*``)."""
    name = parameter.lower()
    return "password" in name or "secret" in name


def parse_url(text: str) -> DatabaseURL:
    """Read a state database URL; a mistake is a one-line StateStoreError without secrets."""
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme in ("postgresql", "postgres"):
            return DatabaseURL("postgresql", text, postgres_params(parts))
        if scheme == "sqlite":
            return DatabaseURL("sqlite", text, {"database": _sqlite_path(parts)})
    except ValueError as exc:
        raise StateStoreError(f"bad database URL {safe_url(text)!r}: {exc}") from None
    raise StateStoreError(
        f"unsupported database {parts.scheme.split('+', 1)[0]!r} in {safe_url(text)}: "
        "use postgresql:// or sqlite:///"
    )


def postgres_params(url: str | Any) -> dict[str, Any]:
    """psycopg2 keyword arguments from ``postgresql://user:password@host:port/dbname?...``
    (a string, or its ``urlsplit`` parts). Errors never repeat the URL, which may
    hold a password; parts left empty are left to libpq.

    Several hosts, as libpq takes them (``postgresql://u@h1:5432,h2:5433/db
    ?target_session_attrs=read-write``), become comma-separated ``host`` and
    ``port`` values, libpq's keyword form of the same list.
    """
    parts = urlsplit(url) if isinstance(url, str) else url
    if parts.scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError("it must start with postgresql:// (or postgres://)")
    credentials, _, location = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    hosts, ports = [], []
    for address in location.split(","):
        host, port = _host_and_port(address)
        hosts.append(host)
        ports.append(port)
    args: dict[str, Any] = {
        "host": ",".join(hosts),
        "port": (ports[0] and int(ports[0])) if len(ports) == 1 else ",".join(ports).strip(","),
        "dbname": unquote(parts.path.lstrip("/")),
        "user": unquote(user),
        "password": unquote(password),
    }
    if len(ports) > 1 and any(ports) and not all(ports):
        args["port"] = ",".join(port or "5432" for port in ports)
    args.update(parse_qsl(parts.query))
    return {key: value for key, value in args.items() if value not in ("", None)}


def _host_and_port(address: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``: the host (unquoted) and the port
    (``""`` when not given); a port that is not a number is a ValueError."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = address.partition(":")
    if port and not port.isdigit():
        raise ValueError("its port is not a number")
    return unquote(host), port


def _sqlite_path(parts: Any) -> str:
    path = unquote(parts.path)
    if parts.netloc:
        raise ValueError("use sqlite:///relative/path or sqlite:////absolute/path")
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        raise ValueError("the state must outlive a run: name a file, not memory")
    return path
