"""The state store on SQLite: a few statements in one ``BEGIN IMMEDIATE`` transaction.

Values are stored as SQLAlchemy stores them on SQLite, so that files written
by earlier crontabbers, by the migrations and by this module read the same:
times as naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``, JSON as text,
durations as a time after 1970-01-01, booleans as 0 and 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator

from crontabber.errors import StateFileGone, Unreachable
from crontabber.record import replace
from crontabber.store.abc import StateStore
from crontabber.store.operators import RunNowStatus, run_now_status
from crontabber.store.records import JobState, Pause, ResetStatus

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

    from crontabber.db.url import DatabaseURL

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
TIME_COLUMNS = frozenset(
    {"next_run", "first_run", "last_run", "last_success", "ongoing", "heartbeat", "lease_expires"}
    | {"run_now", "run_now_displaced", "cancel_requested", "until", "since", "at"}
    | {"about", "created", "next_attempt", "sent", "lease_until"}
    | {"db_now", "log_time", "success", "oldest_log"}
)
JSON_COLUMNS = frozenset({"depends_on", "last_error", "paused"})  # paused: JSON, or 0/1


def encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crontabber stores aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None).strftime(TIME_FORMAT)
    if isinstance(value, dt.timedelta):
        return (EPOCH + value).strftime(TIME_FORMAT)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def parse_time(text: str) -> dt.datetime:
    date, _, clock = text.partition(" ")
    whole, _, fraction = clock.partition(".")
    parsed = dt.datetime.strptime(f"{date} {whole or '00:00:00'}", "%Y-%m-%d %H:%M:%S")
    return parsed.replace(microsecond=int((fraction + "000000")[:6]), tzinfo=UTC)


def decode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in TIME_COLUMNS and isinstance(value, str):
        return parse_time(value)
    if name in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    return value


class SqliteStore(StateStore):
    """:class:`StateStore` on a SQLite file, for any number of processes on one host."""

    dialect_name = "sqlite"

    def __init__(self, url: DatabaseURL, **options: Any) -> None:
        super().__init__(url, **options)
        # Another process's write lock is waited for as long as writes are retried.
        busy = max(self.retry_for.total_seconds(), 0.1)
        self.url = replace(url, connect_args={**url.connect_args, "busy_timeout": busy})
        self._path = os.path.abspath(url.connect_args["database"])
        self._file: tuple[int, int] | None = None  # (device, inode) of the file opened

    def _connect(self) -> Any:
        if self._file is not None:  # checked before a new connection could make a new file
            found = self._file_id()
            if found != self._file:
                self._close_quietly("_connection")  # the file it knew stays the one it wants
                raise StateFileGone(
                    f"the state file {self._path} was "
                    f"{'removed' if found is None else 'replaced'} while crontabber had it "
                    "open; stopping rather than write into a file nobody reads"
                )
        try:
            connection = super()._connect()
        except Unreachable as exc:  # a file SQLite cannot read fails already at the connect
            self._check_failure(exc.error)
            raise
        if self._file is None:
            self._file = self._file_id()
        return connection

    def check_integrity(self) -> None:
        """``PRAGMA quick_check``; StateFileCorrupt when it finds a problem (see
        :mod:`crontabber.store.integrity`)."""
        from crontabber.store import integrity  # only when the file may be damaged

        integrity.check(self._path, self.url.connect_args["busy_timeout"])

    def _check_failure(self, exc: BaseException) -> None:
        from crontabber.store import integrity  # only when a statement failed

        if integrity.looks_corrupt(exc):
            self.check_integrity()

    def _file_id(self) -> tuple[int, int] | None:
        """The state file's (device, inode), or None when there is none at its path."""
        try:
            found = os.stat(self._path)
        except FileNotFoundError:
            return None
        return found.st_dev, found.st_ino

    def _execute(self, connection: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        cursor = connection.execute(
            self.sql[name], {key: encode(value) for key, value in params.items()}
        )
        if cursor.description is None:
            return []
        return [
            {key: decode(key, value) for key, value in row.items()}
            for row in _rows_as_dicts(cursor)
        ]

    @contextlib.contextmanager
    def _writing(self, connection: Any) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _read_states(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._execute(connection, "read_states", params)

    def _revision(self, connection: Any) -> str | None:
        rows = connection.execute(self.sql["schema_revision"]).fetchall()
        return rows[0][0]

    def _claim(self, connection: Any, params: dict[str, Any], *, create: bool) -> dict[str, Any]:
        with self._writing(connection):
            if create:
                self._execute(connection, "insert_state", params)
            rows = self._execute(connection, "lock", params)
            if not rows:  # the row went away (reset) since the caller saw it: create it
                self._execute(connection, "insert_state", params)
                rows = self._execute(connection, "lock", params)
            row = rows[0]
            free = row["ongoing"] is None
            still_as_seen = params["force"] or row["next_run"] == params["seen_next_run"]
            row["claimed"] = free and still_as_seen and not row["paused"]
            if row["claimed"]:
                row.update(self._execute(connection, "mark_ongoing", params)[0])
        return row

    def _recover(self, connection: Any, state: JobState, params: dict[str, Any]) -> JobState | None:
        with self._writing(connection):
            rows = self._execute(connection, "recover", params)
            if not rows:
                return None
            recorded = JobState.from_values(rows[0])
            assert state.ongoing is not None
            self._log(
                connection,
                app_name=state.app_name,
                log_time=params["db_now"],
                duration=params["db_now"] - state.ongoing,
                success=None,
                error=params["error"],
                token=params["log_token"],
                superseded=False,
                host=params["abandoned_host"],
                pid=params["abandoned_pid"],
                trigger=None,
                output=None,
            )
        return recorded

    def _log(self, connection: Any, *, error: dict[str, str] | None, **values: Any) -> bool:
        error = error or {}
        cursor = connection.execute(
            self.sql["insert_log"],
            {
                **{key: encode(value) for key, value in values.items()},
                "exc_type": error.get("type"),
                "exc_value": error.get("value"),
                "exc_traceback": error.get("traceback"),
            },
        )
        return bool(cursor.rowcount)

    def _finish(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[JobState | None, bool, bool | None]:
        with self._writing(connection):
            rows = self._execute(connection, "finish", params)
            released = JobState.from_values(rows[0]) if rows else None
            logged = self._log(
                connection,
                app_name=params["app_name"],
                log_time=params["finished"],
                duration=params["duration"],
                success=params["success"],
                error=params["error"],
                token=params["token"],
                superseded=released is None,
                host=params["host"],
                pid=params["pid"],
                trigger=params["trigger"],
                output=params["output"],
            )
            before = None
            if not logged:
                found = self._execute(connection, "logged_superseded", params)
                before = bool(found[0]["superseded"]) if found else None
        return released, logged, before

    def _beat(self, connection: Any, params: dict[str, Any]) -> bool | str:
        rows = self._execute(connection, "beat", params)
        if not rows:
            return False
        return "cancel" if rows[0]["cancel_requested"] is not None else True

    def _record_date(self, connection: Any, params: dict[str, Any]) -> bool:
        with self._writing(connection):
            updated = connection.execute(
                self.sql["record_date"],
                {key: encode(params[key]) for key in ("date", "now", "app_name", "token")},
            ).rowcount
            if updated:
                self._log(
                    connection,
                    app_name=params["app_name"],
                    log_time=params["now"],
                    duration=params["duration"],
                    success=params["date"],
                    error=None,
                    token=params["log_token"],
                    superseded=False,
                    host=params["host"],
                    pid=params["pid"],
                    trigger=params["trigger"],
                    output=params["output"],
                )
        return bool(updated)

    def _reset(
        self, connection: Any, app_name: str, force: bool, audit: dict[str, Any]
    ) -> tuple[ResetStatus, JobState | None]:
        with self._writing(connection):
            rows = self._execute(connection, "select_state", {"app_name": app_name})
            if not rows:
                return ResetStatus.ABSENT, None
            state = JobState.from_values(rows[0])
            if state.ongoing is not None and not force:
                return ResetStatus.ONGOING, state
            self._execute(connection, "delete_state", {"app_name": app_name})
            self._execute(connection, "audit", {"app_name": app_name, **audit})
            return ResetStatus.RESET, state

    def _pause(self, connection: Any, params: dict[str, Any]) -> Pause | None:
        with self._writing(connection):
            db_now = self._execute(connection, "db_now", {})[0]["db_now"]
            until = params["until"]
            if until is None and params["until_seconds"] is not None:
                until = db_now + dt.timedelta(seconds=params["until_seconds"])
            if until is not None and until <= db_now:
                return None
            pause = Pause(params["app_name"], db_now, until, params["reason"], params["actor"])
            self._execute(connection, "pause", {**params, "db_now": db_now, "until": until})
            self._audit(connection, "pause", params, f"until {_words(until)}")
        return pause

    def _resume(self, connection: Any, params: dict[str, Any]) -> bool:
        with self._writing(connection):
            db_now = self._execute(connection, "db_now", {})[0]["db_now"]
            rows = self._execute(connection, "resume", params)
            resumed = bool(rows) and (rows[0]["until"] is None or rows[0]["until"] > db_now)
            if resumed:
                self._audit(connection, "resume", params)
        return resumed

    def _run_now(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[RunNowStatus, dict[str, Any]]:
        with self._writing(connection):
            self._execute(connection, "insert_state", params)
            row = self._execute(connection, "run_now_target", params)[0]
            row["asked"] = row["ongoing"] is None and not row["paused"]
            if row["asked"]:
                db_now = self._execute(connection, "db_now", {})[0]["db_now"]
                self._execute(
                    connection, "run_now", {"app_name": params["app_name"], "db_now": db_now}
                )
                self._audit(connection, "run-now", params)
        return run_now_status(row), row

    def _cancel(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[bool, dict[str, Any] | None]:
        with self._writing(connection):
            rows = self._execute(connection, "select_state", params)
            if not rows or rows[0]["ongoing"] is None:
                return False, rows[0] if rows else None
            self._execute(connection, "cancel", params)
            row = rows[0]
            detail = f"the run on {row['ongoing_host']} pid {row['ongoing_pid']}"
            self._audit(connection, "cancel", params, detail)
        return True, row

    def _record_event(self, connection: Any, params: dict[str, Any]) -> int:
        recorded = 0
        with self._writing(connection):
            for sink in params["sinks"]:
                values = {**params, "sink": sink}
                del values["sinks"]
                recorded += connection.execute(
                    self.sql["record_event"], {k: encode(v) for k, v in values.items()}
                ).rowcount
        return recorded

    def _claim_notifications(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._writing(connection):
            ids = [row["id"] for row in self._execute(connection, "pending_notifications", params)]
            return [
                self._execute(connection, "lease_notification", {**params, "id": id_})[0]
                for id_ in ids
            ]

    def _audit(
        self, connection: Any, action: str, params: dict[str, Any], detail: str | None = None
    ) -> None:
        self._execute(
            connection,
            "audit",
            {
                "action": action,
                "app_name": params["app_name"],
                "reason": params["reason"],
                "detail": detail,
                "actor": params["actor"],
            },
        )

    def _prune(self, connection: Any, params: dict[str, Any]) -> int:
        return connection.execute(
            self.sql["prune_log"], {key: encode(value) for key, value in params.items()}
        ).rowcount

    def _log_page(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self._execute(connection, "log_page", params)
        for row in rows:
            row["duration"] = decode_duration(row["duration"])
            row["superseded"] = bool(row["superseded"])
        return rows

    def _log_query(
        self, connection: Any, name: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rows = self._execute(connection, name, params)
        for row in rows:
            row["duration"] = decode_duration(row["duration"])
        return rows


def _words(until: dt.datetime | None) -> str:
    return f"{until:%Y-%m-%d %H:%M:%S} UTC" if until is not None else "resumed"


def decode_duration(value: Any) -> dt.timedelta | None:
    """A duration as stored (a time after 1970-01-01, see :func:`encode`) -> a timedelta."""
    if value is None:
        return None
    return parse_time(value) - EPOCH.replace(tzinfo=UTC)


def _rows_as_dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
