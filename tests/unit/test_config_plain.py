"""The fast path of a tick: its ini file read without configman (crontabber.config.plain).

Four promises are held here. parse_ini reads what configobj reads, or returns
None. The settings read that way equal configman's. Anything that needs configman
goes to configman. The real command takes the fast path, and its jobs still see
what configman would have given them.
"""

from __future__ import annotations

import os
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from crontabber.config import configman_compat
from crontabber.config import configman_edge as config
from crontabber.config import plain as plain_config
from crontabber.errors import ConfigError

from ..helpers.command import import_order, imported_packages, run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

REPO = Path(__file__).resolve().parents[2]
NOT_THE_REPOSITORY = {".venv", ".ci-venv", ".git"}
# Every case is written beside a file of this name, so that +include has something to read.
INCLUDED = "included.ini"
INCLUDED_TEXT = "included = yes\n"


def as_plain(section: Mapping[str, Any]) -> dict[str, Any]:
    """configobj's sections as nested plain dicts (values read with interpolation)."""
    return {
        key: as_plain(section[key]) if isinstance(section[key], Mapping) else section[key]
        for key in section
    }


def configobj_reading(path: Path) -> dict[str, Any]:
    """What configman's reader makes of the file (raising what it raises)."""
    configman_compat.load()
    from configman.value_sources.for_configobj import ConfigObjWithIncludes

    return as_plain(ConfigObjWithIncludes(str(path)))


def plain_reading(path: Path) -> dict[str, Any] | None:
    """What parse_ini makes of the file, decoded as plain_config.read decodes it."""
    with open(path, encoding="utf-8-sig") as file:
        return plain_config.parse_ini(file.read())


def written(directory: Path, text: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / INCLUDED).write_text(INCLUDED_TEXT)
    path = directory / "case.ini"
    path.write_bytes(text)
    return path


def assert_reads_as_configobj(path: Path) -> dict[str, Any] | None:
    """When parse_ini reads the file, configobj reads the same; returns parse_ini's reading."""
    mine = plain_reading(path)
    if mine is None:
        return None
    try:
        theirs = configobj_reading(path)
    except Exception as exc:  # configobj refuses what parse_ini read
        pytest.fail(f"parse_ini read {mine!r}, configobj refuses it: {type(exc).__name__}: {exc}")
    assert mine == theirs
    return mine


# 1. The parser, against configobj


def repository_ini_files() -> list[Path]:
    found = []
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = sorted(
            name for name in subdirectories if name not in NOT_THE_REPOSITORY
        )
        found.extend(Path(directory) / name for name in sorted(files) if name.endswith(".ini"))
    return found


REPOSITORY_INI_FILES = repository_ini_files()


def test_the_repository_has_ini_files_parse_ini_reads() -> None:
    assert REPOSITORY_INI_FILES
    assert any(plain_reading(path) is not None for path in REPOSITORY_INI_FILES)


@pytest.mark.parametrize(
    "path", REPOSITORY_INI_FILES, ids=[str(p.relative_to(REPO)) for p in REPOSITORY_INI_FILES]
)
def test_repository_ini_files_read_as_configobj_reads_them(path: Path) -> None:
    assert_reads_as_configobj(path)


# Texts parse_ini reads (it must, and as configobj does).
ACCEPTED: dict[str, bytes] = {
    "empty-file": b"",
    "only-comments-and-blank-lines": b"# a comment\n\n   # indented comment\n\n",
    "only-a-byte-order-mark": b"\xef\xbb\xbf",
    "byte-order-mark": b"\xef\xbb\xbf[crontabber]\ntimezone = UTC\n",
    "triple-single-one-line": b"[crontabber]\njobs = '''a.B|1d'''\n",
    "triple-double-one-line": b'[crontabber]\njobs = """a.B|1d"""\n',
    "triple-one-line-comment-after": b"[crontabber]\njobs = '''a.B|1d'''   # the only job\n",
    "triple-double-one-line-comment-after": b'[crontabber]\njobs = """a.B|1d"""#x\n',
    "triple-one-line-hash-and-commas-inside": b"[a]\nk = '''x, y # not a comment'''\n",
    "triple-one-line-other-quotes-inside": b"[a]\nk = '''say \"hi\", it's'''\nj = \"\"\"it's\"\"\"\n",
    "triple-empty": b"[a]\nk = ''''''\nj = \"\"\"\"\"\"  # nothing\n",
    "triple-several-lines": (
        b"[crontabber]\n    jobs='''\n        a.B|5m\n        c.D|1d|03:00\n    '''\n"
    ),
    "triple-double-several-lines-comment-after": (
        b'[crontabber]\njobs = """\n  a.B|1h\n  c.D|cron(0 2 * * MON-FRI)\n"""  # done\n'
    ),
    "triple-comments-and-blank-lines-inside": (
        b"[crontabber]\n  jobs = '''\n    # first\n\n    a.B|1d   # inline\n"
        b"        indented.More|2h\n\n    # last\n  '''\n  timezone = UTC\n"
    ),
    "triple-text-on-opening-and-closing-lines": (
        b"[crontabber]\njobs = '''a.B|1d\n  c.D|1h\n  e.F|2h'''\n"
    ),
    "triple-opening-line-comment-is-value": b"[a]\nk = '''  # kept\n  x\n'''\n",
    "triple-section-and-key-lines-inside": b"[a]\nk = '''\n[b]\nj = 1\n+plus\n'''\n",
    "triple-other-quote-inside-several-lines": b"[a]\nk = '''\n\"\"\"\n'''\nj = \"\"\"\n'''\n\"\"\"\n",
    "triple-trailing-whitespace": b"[a]\nk = '''  \n  x   \n   '''   \nj = v\n",
    "triple-no-spaces": b"[a]\nk='''x'''\n",
    "indented-lines": b"  [crontabber]\n\ttimezone = UTC\n      host_name = h\n",
    "comments-everywhere": (
        b"# top\n[crontabber]  # the section\n  # inside\n  timezone = UTC\n# between\n"
        b"[logging]\n# last\n"
    ),
    "inline-comment-after-unquoted": b"[crontabber]\ntimezone = Europe/Berlin   # local time\n",
    "inline-comment-without-space": b"[crontabber]\ntimezone = UTC#x\nhost_name = h #y\n",
    "empty-values": b"[crontabber]\nhost_name =\ntimezone=\nj =   \n",
    "empty-value-then-comment": b"[crontabber]\nhost_name = # none\nj=#\n",
    "single-quoted": b"[crontabber]\nhost_name = 'web 1'\n",
    "double-quoted": b'[crontabber]\nhost_name = "web 1"\n',
    "quoted-with-hash": b"[a]\nk = 'a # b'\nj = \"x # y\"  # z\n",
    "quoted-other-quote-inside": b'[a]\nk = "it\'s"\nj = \'say "hi"\'\n',
    "quoted-then-comment": b"[a]\nk = 'a'   # c\nj = \"b\"#c\n",
    "quoted-then-comment-with-quote": b'[a]\nk = "a"  # say "hi"\n',
    "quoted-empty": b"[a]\nk = ''\nj = \"\"\n",
    "quoted-spaces-kept": b"[a]\nk = '  a  '\n",
    "nested-sections-and-back-up": (
        b"[resource]\n  [[postgresql]]\n    host = db\n    port = 5433\n"
        b"[sentry]\n  dsn = https://k@127.0.0.1:9/1\n[web]\n  port = 8081\n"
    ),
    "three-levels-and-back": (
        b"[a]\nk = 1\n[[b]]\nk = 2\n[[[c]]]\nk = 3\n[[d]]\nk = 4\n[e]\nk = 5\n[[b]]\nk = 6\n"
    ),
    "empty-sections": b"[a]\n[[b]]\n[c]\n",
    "section-header-comment-and-spaces": b"[ crontabber ]   # main\n[[ class-Foo ]]#x\nk = v\n",
    "section-names-with-dashes-and-underscores": b"[crontabber]\n[[class-Foo_Bar-2]]\nk = v\n",
    "key-names-with-dashes-and-underscores": (
        b"[crontabber]\nerror_retry_time = 5\nlist-jobs = x\na-b_c-9 = 1\n_x = 2\n-y = 3\n"
    ),
    "same-key-in-several-sections": b"[a]\nk = 1\n[[b]]\nk = 2\n[c]\nk = 3\n",
    "spacing-around-equals": b"[a]\nk=v\nj   =   w\ni\t=\tx\nh= y\n",
    "value-with-equals": b"[a]\nk = a=b=c\nj == x\n",
    "value-with-colons-and-slashes": b"[a]\nk = /var/lib/x:/opt/y\nj = 03:00\n",
    "postgres-url": (
        b"[crontabber]\ndatabase_url = postgresql://u:p@h:5/db?x=y\n"
        b"[sentry]\ndsn = https://key@sentry.example.com:443/12  # prod\n"
    ),
    "sqlite-url-with-query": b"[crontabber]\ndatabase_url = sqlite:///s.sqlite?mode=rw&cache=x\n",
    "non-ascii-values": (
        "[crontabber]\nhost_name = häst-ü\n[a]\ngreeting = こんにちは\n"
        "j = 'café crème'\ni = '''Grüße\n  ünd mehr\n'''\n"
    ).encode(),
    "tabs-and-spaces-inside-values": b"[a]\nk = a\tb   c\n",
    "vertical-tab-in-a-value": b"[a]\nk = a\x0bb\n",
    "form-feed-in-a-comment": b"[crontabber]\n# retry\x0cerror_retry_time = 5\n",
    "number-and-boolean-looking-values": b"[a]\nk = 5\nj = True\ni = 1.5e3\nh = -0\n",
    "percent-and-dollar-without-interpolation": b"[a]\nk = 100%\nj = %s\ni = 50%%\nh = $HOME\n",
    "plus-inside-values": b"[a]\nk = a+include b\nj = 'x +include y'\n",
    "windows-line-endings": b"[crontabber]\r\ntimezone = UTC\r\njobs = '''\r\n  a.B|1d\r\n'''\r\n",
    "old-mac-line-endings": b"[crontabber]\rtimezone = UTC\r",
    "no-newline-at-the-end": b"[crontabber]\ntimezone = UTC",
    "keys-at-the-top-before-sections": b"k = v\nj = 'w'\n[a]\ni = x\n",
    "form-feed-on-a-line-of-its-own": b"[a]\nk = v\n\x0c\nj = w\n",
}


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_parse_ini_reads_what_configobj_reads(tmp_path: Path, text: bytes) -> None:
    path = written(tmp_path, text)
    assert plain_reading(path) is not None, "parse_ini should read this"
    assert_reads_as_configobj(path)


def test_what_parse_ini_reads_in_detail() -> None:
    """A few readings spelled out, so the comparison is not of two identical mistakes."""
    text = (
        "[crontabber]\n  jobs = '''\n    a.B|1d  # a\n\n    c.D|1h\n  '''  # after\n"
        "  host_name = # none\n  timezone = 'Europe/Berlin' # zone\n"
        "[resource]\n  [[postgresql]]\n    password = p=:/@x\n[sentry]\n  dsn = x#y\n"
    )
    assert plain_config.parse_ini(text) == {
        "crontabber": {
            "jobs": "\n    a.B|1d  # a\n\n    c.D|1h\n  ",
            "host_name": "",
            "timezone": "Europe/Berlin",
        },
        "resource": {"postgresql": {"password": "p=:/@x"}},
        "sentry": {"dsn": "x"},
    }


# Texts configobj reads otherwise than parse_ini would, or refuses: parse_ini says None.
REFUSED: dict[str, bytes] = {
    "unquoted-comma-list": b"[a]\nk = a, b\n",
    "unquoted-trailing-comma": b"[a]\nk = a,\n",
    "single-comma-empty-list": b"[a]\nk = ,\n",
    "quoted-list": b"[a]\nk = 'a', 'b'\n",
    "quoted-then-unquoted-list": b'[a]\nk = "a", b\n',
    "interpolation": b"[a]\nhere = /x\nk = %(here)s/y\n",
    "interpolation-quoted": b"[a]\nhere = /x\nk = '%(here)s/y'\n",
    "interpolation-in-triple-quotes": b"[a]\nhere = /x\nk = '''\n  %(here)s\n'''\n",
    "include-line": b"+include ./included.ini\n[a]\nk = v\n",
    "include-line-in-a-section": b"[a]\n    +include included.ini\nk = v\n",
    "duplicate-keys": b"[a]\nk = 1\nk = 2\n",
    "duplicate-keys-at-the-top": b"k = 1\nk = 1\n",
    "duplicate-sections": b"[a]\nk = 1\n[a]\nj = 2\n",
    "duplicate-nested-sections": b"[a]\n[[b]]\n[[b]]\n",
    "section-named-as-a-key": b"[a]\nb = 1\n[[b]]\n",
    "section-two-levels-deeper": b"[a]\n[[[b]]]\nk = v\n",
    "nested-section-at-the-top": b"[[b]]\nk = v\n",
    "unbalanced-brackets-close": b"[a]]\nk = v\n",
    "unbalanced-brackets-open": b"[[a]\nk = v\n",
    "unclosed-bracket": b"[a\nk = v\n",
    "text-after-section": b"[a] b\n",
    "spaces-between-brackets": b"[a]\n[ [b] ]\n",
    "quoted-section-name": b'["a"]\nk = v\n',
    "section-name-with-a-space": b"[a b]\nk = v\n",
    "unterminated-triple-one-line": b"[a]\nk = '''abc\n",
    "unterminated-triple-several-lines": b"[a]\nk = '''\n  abc\nj = 1\n",
    "unterminated-triple-at-the-end": b'[a]\nk = """',
    "triple-closed-by-the-other-quote": b"[a]\nk = '''abc\"\"\"\n",
    "text-after-closing-triple-one-line": b"[a]\nk = '''abc''' def\n",
    "text-after-closing-triple-several-lines": b"[a]\nk = '''\n  abc\n''' def\n",
    "two-triple-quoted-values-on-a-line": b"[a]\nk = '''a''' '''b'''\n",
    "quote-after-closing-triple": b"[a]\nk = '''a''''\n",
    "key-with-a-dot": b"[crontabber]\ncrontabber.timezone = UTC\n",
    "key-with-a-space": b"[a]\nmy key = v\n",
    "quoted-key": b"[a]\n'k' = v\n",
    "non-ascii-key": "[a]\nschlüssel = v\n".encode(),
    "neither-section-nor-key": b"[a]\njust some words\n",
    "colon-instead-of-equals": b"[a]\nk: v\n",
    "no-key": b"[a]\n= v\n",
    "unquoted-value-with-a-quote": b"[a]\nk = it's\n",
    "quoted-value-with-text-after": b"[a]\nk = 'a'b\n",
    "quote-inside-single-quotes": b"[a]\nk = 'a'b'\n",
    "unclosed-quote": b"[a]\nk = 'abc\n",
    # A comma outside triple quotes, even inside quotes or a comment: configobj may
    # read a list (configman reads such a file).
    "quoted-with-commas": b"[a]\nk = 'a, b, c'\nj = \"x,y\"\n",
    "comment-with-quotes-and-commas-after-unquoted": b'[a]\nk = v  # it\'s "this", or that\n',
}


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_parse_ini_refuses_what_configobj_reads_its_own_way(tmp_path: Path, text: bytes) -> None:
    assert plain_reading(written(tmp_path, text)) is None


# Texts where configobj's reading is not the obvious one: parse_ini returns None, or
# what configobj reads.
READ_OTHERWISE: dict[str, bytes] = {
    # configobj: a list, its first item running on into the comment.
    "quoted-value-comment-with-quote-and-comma": (
        b'[sentry]\ndsn = "https://k@127.0.0.1:9/1"  # from "sentry", see docs\n'
    ),
    "single-quoted-value-comment-with-quote-and-comma": b"[a]\nk = 'a'  # x', y\n",
    "quoted-value-comment-with-comma-no-quote": b"[a]\nk = 'a'  # x, y\n",
    # configobj reads lines as a file does (\n, \r, \r\n); a form feed ends no line.
    "form-feed-in-a-comment": b"[crontabber]\n# retry\x0cerror_retry_time = 5\n",
    "line-separator-in-triple-quotes": "[a]\nk = '''a\u2028b'''\n".encode(),
    "next-line-in-a-quoted-value": "[a]\nk = 'a\x85b'\n".encode(),
    "form-feed-after-a-value": b"[a]\nk = v\x0c\n",
    # configman's reader expands +include lines before configobj sees any value.
    "include-line-inside-triple-quotes": b"[a]\nk = '''\n  +include included.ini\n'''\n",
}


@pytest.mark.parametrize("text", READ_OTHERWISE.values(), ids=READ_OTHERWISE.keys())
def test_parse_ini_never_reads_otherwise_than_configobj(tmp_path: Path, text: bytes) -> None:
    assert_reads_as_configobj(written(tmp_path, text))


# 2. The settings, against configman's


def configman_sees_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """configman's copy of the environment, made when configman was first imported,
    made again from ``os.environ`` as it is now (as a fresh process would have it)."""
    configman = configman_compat.load()
    from configman.dotdict import configman_keys

    environment = configman_keys(os.environ)
    environment.always_ignore_mismatches = True
    monkeypatch.setattr(configman, "environment", environment)


def read_by_configman(name: str) -> bool:
    """Whether configman takes an option from an environment variable of that name."""
    return plain_config.environment_options({name: ""}) != {}


@pytest.fixture
def quiet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No configman option in the environment (conftest sets ``logging.level``), for this
    process, its children and configman's copy of the environment; the import path as
    it was after the test."""
    for name in list(os.environ):
        if read_by_configman(name):
            monkeypatch.delenv(name)
    configman_sees_the_environment(monkeypatch)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def modules() -> Iterator[list[str]]:
    """Job module names written by a test, unique, and forgotten after it."""
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)


def unique(modules: list[str], stem: str) -> str:
    name = f"{stem}_{uuid.uuid4().hex}"
    modules.append(name)
    return name


JOBS = (
    Job("Hourly", "hourly"),
    Job("Nightly", "nightly", depends_on="hourly"),
    Job("Berlin", "berlin", depends_on=("hourly", "nightly"), attributes="max_runtime = 60"),
    Job("Weekdays", "weekdays"),
    Job("Quick", "quick"),
    Job("Ping", "ping", depends_on="pong"),
    Job("Pong", "pong", depends_on="ping"),
    Job("Orphan", "orphan", depends_on="nobody"),
    Job("NoName"),
    Job("NotAJob", "not_a_job", base="", run=None),
)


def job_module(directory: Path, modules: list[str]) -> str:
    name = unique(modules, "plainjobs")
    write_job_module(directory, name, *JOBS)
    return name


def settings_both_ways(path: Path) -> tuple[config.Settings, config.Settings]:
    argv = [f"--admin.conf={path}"]
    plain = config.plain_settings(argv)
    assert plain is not None, "the plain path should read this file"
    assert plain.job_config is not None
    return plain, config.settings_from(config.read_config(argv))


def everything(module: str) -> str:
    return f"""\
        # Every option crontabber has, each away from its default.
        [crontabber]
            jobs = '''
                # frequencies, HH:MM times, time zones, cron
                {module}.Hourly|1h
                {module}.Nightly|1d|03:30
                {module}.Berlin|1d|02:15|Europe/Berlin

                # two on a line, and a zone of its own
                {module}.Weekdays|cron(0 2 * * MON-FRI)|America/New_York ; {module}.Quick|cron(0,30 8-18 * * *)
            '''
            timezone = Asia/Tokyo
            error_retry_time = 42
            log_retention_days = 7
            max_ongoing_age_hours = 2.5
            heartbeat_interval = 12.5
            heartbeat_stale_intervals = 4
            host_name = worker-7  # not the system's
            state_retry_seconds = 5
            auto_migrate = false
        [resource]
            [[postgresql]]
                host = db.example.com
                port = 6543
                dbname = "crontabber state"
                user = cron
                password = 's3cr:t/@x'
        [sentry]
            dsn = https://key@sentry.example.com:443/12
        [web]
            host = 0.0.0.0
            port = 8081
            auth_token = tok3n
        [daemon]
            poll_seconds = 2.5
            shutdown_grace_seconds = 0
            workers = 3
        [logging]
            level = debug
            file = crontabber.log
        """


def test_every_option_reads_as_configman_reads_it(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    module = job_module(tmp_path, modules)
    path = tmp_path / "crontabber.ini"
    path.write_text(textwrap.dedent(everything(module)))
    plain, theirs = settings_both_ways(path)
    assert plain == theirs
    # Not two identical defaults: the file's values are there.
    assert [spec.app_name for spec in plain.specs] == [
        "hourly",
        "nightly",
        "berlin",
        "weekdays",
        "quick",
    ]
    assert plain.database_url == (
        "postgresql://cron:s3cr%3At%2F%40x@db.example.com:6543/crontabber%20state"
    )
    assert (plain.error_retry_time.total_seconds(), plain.host_name) == (42, "worker-7")
    assert (plain.auto_migrate, plain.log_level, plain.daemon_workers) == (False, "DEBUG", 3)
    assert (plain.sentry_dsn, plain.web_port, plain.web_auth_token) == (
        "https://key@sentry.example.com:443/12",
        8081,
        "tok3n",
    )
    assert plain.problems == () and plain.warnings == ()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[crontabber]\n    jobs = {module}.Hourly|5m\n", id="one-unquoted-job"),
        pytest.param(
            '[crontabber]\n    jobs = """{module}.Hourly|1h ; {module}.Nightly|2d|23:59"""\n'
            "    database_url = sqlite:///state/here.sqlite\n",
            id="one-line-jobs-relative-sqlite",
        ),
        pytest.param(
            "[crontabber]\n    jobs = '''\n        {module}.Hourly|1h\n    '''\n"
            "    log_retention_days = 0\n    database_url = postgresql://u:p@h:5/db?x=y\n"
            "[resource]\n    [[postgresql]]\n        host = ignored\n",
            id="database-url-wins-no-retention",
        ),
        pytest.param(
            "\ufeff# with a byte-order mark\n[crontabber]\n    jobs = '{module}.Hourly|1h'\n"
            "    timezone = 'Europe/Berlin'\n[resource]\n    [[postgresql]]\n"
            "        dbname = only_a_name\n[logging]\n    level =\n[web]\n    port =\n",
            id="quoted-values-and-empty-ones",
        ),
        pytest.param("[crontabber]\n", id="no-jobs"),
        pytest.param("", id="empty-file"),
    ],
)
def test_small_files_read_as_configman_reads_them(
    tmp_path: Path, quiet_environment: None, modules: list[str], body: str
) -> None:
    module = job_module(tmp_path, modules)
    path = tmp_path / "crontabber.ini"
    path.write_text(body.format(module=module), encoding="utf-8")
    plain, theirs = settings_both_ways(path)
    assert plain == theirs


def test_misconfigured_jobs_are_the_same_problems(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    module = job_module(tmp_path, modules)
    broken = unique(modules, "brokenjobs")
    (tmp_path / f"{broken}.py").write_text("raise RuntimeError('cannot start')\n")
    missing = unique(modules, "missingjobs")
    path = tmp_path / "crontabber.ini"
    path.write_text(
        textwrap.dedent(
            f"""\
            [crontabber]
                jobs = '''
                    {module}.Hourly|1h
                    {missing}.Job|1h
                    {broken}.Job|1h
                    {module}.Absent|1h
                    {module}.Nightly|sometimes
                    {module}.Quick|1h|03:00
                    {module}.Weekdays|cron(0 2 * *
                    {module}.Berlin|1d|02:00|Mars/Olympus
                    {module}.Ping|1h
                    {module}.Pong|1h
                    {module}.Orphan|1h
                    {module}.NoName|1h
                    {module}.NotAJob|1h
                '''
            """
        )
    )
    plain, theirs = settings_both_ways(path)
    assert plain == theirs
    messages = "\n".join(problem.message for problem in plain.problems)
    for expected in (
        f"cannot import module '{missing}'",
        f"importing module '{broken}' for job '{broken}.Job' failed: RuntimeError",
        f"module '{module}' has no class 'Absent'",
        "bad frequency 'sometimes'",
        "needs a frequency of at least a day",
        "bad cron schedule",
        "Mars/Olympus",
        "dependency cycle",
        "'nobody', which is not in the jobs list",
        "has no app_name",
        "is not a class with a run() method",
    ):
        assert expected in messages
    assert [spec.app_name for spec in plain.specs] == ["hourly", "ping", "pong", "orphan"]


def test_a_bad_default_time_zone_is_the_same_problem(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    module = job_module(tmp_path, modules)
    path = tmp_path / "crontabber.ini"
    path.write_text(f"[crontabber]\njobs = {module}.Nightly|1d|03:00\ntimezone = Nowhere/Else\n")
    plain, theirs = settings_both_ways(path)
    assert plain == theirs
    assert not plain.problems[0].of_jobs_only


# 3. What goes to configman


def configured(tmp_path: Path, modules: list[str], extra: str = "", name: str = "") -> Path:
    module = job_module(tmp_path, modules)
    path = tmp_path / (name or "crontabber.ini")
    path.write_text(f"[crontabber]\n    jobs = {module}.Hourly|1h\n{extra}")
    return path


@pytest.mark.parametrize(
    "extra_args",
    [
        ["--list-jobs"],
        ["--crontabber.error_retry_time", "5"],  # a value after a space
        ["--crontabber.error_retry=5"],  # an abbreviation getopt would take
        ["--crontabber.error_retry_time=5", "--crontabber.error_retry_time=6"],
        ["-l"],
        ["--admin.strict"],
        ["--configtest"],
        ["--job=hourly"],
        ["extra-word"],
    ],
    ids=lambda args: args[0],
)
def test_any_other_argument_goes_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str], extra_args: list[str]
) -> None:
    path = configured(tmp_path, modules)
    assert config.plain_settings([f"--admin.conf={path}"]) is not None
    assert config.plain_settings([f"--admin.conf={path}", *extra_args]) is None
    assert config.plain_settings([*extra_args, f"--admin.conf={path}"]) is None


def test_the_config_file_from_the_command_line_or_the_default(tmp_path: Path) -> None:
    path = tmp_path / "crontabber.ini"
    path.write_text("[crontabber]\n")
    missing = str(tmp_path / "missing.ini")
    assert plain_config.command_line([f"--admin.conf={path}"], missing) == (str(path), {})
    assert plain_config.command_line(["--admin.conf", str(path)], missing) == (str(path), {})
    assert plain_config.command_line([], str(path)) == (str(path), {})
    assert plain_config.command_line([], missing) is None
    assert plain_config.command_line([f"--admin.conf={missing}"], str(path)) is None
    assert plain_config.command_line([f"--admin.conf={path}", "--list-jobs"], missing) is None
    assert plain_config.command_line([f"admin.conf={path}"], missing) is None
    read = plain_config.read([], str(path), environ={})
    assert read is not None and read[1] == str(path)


def test_crontabbers_own_options_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "crontabber.ini"
    path.write_text("[crontabber]\n")
    given = plain_config.command_line(
        [
            "--logging.level=WARNING",
            f"--admin.conf={path}",
            "--crontabber.auto_migrate",
            "--web.port=",
        ],
        "missing.ini",
    )
    assert given == (
        str(path),
        {"logging.level": "WARNING", "crontabber.auto_migrate": "True", "web.port": ""},
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ["--logging.level=WARNING"],
        ["--crontabber.error_retry_time=5", "--crontabber.auto_migrate=False"],
        ["--crontabber.auto_migrate"],
        ["--crontabber.timezone=Europe/Berlin", "--web.port=", "--daemon.workers=3"],
        ["--resource.postgresql.host=db.example", "--resource.postgresql.port=6432"],
    ],
    ids=lambda args: args[0],
)
def test_options_on_the_command_line_read_as_configman_reads_them(
    tmp_path: Path, quiet_environment: None, modules: list[str], arguments: list[str]
) -> None:
    path = configured(tmp_path, modules, extra="    error_retry_time = 60\n")
    argv = [f"--admin.conf={path}", *arguments]
    plain = config.plain_settings(argv)
    assert plain is not None
    assert plain == config.settings_from(config.read_config(argv))


def test_a_value_on_the_command_line_that_does_not_convert_goes_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    path = configured(tmp_path, modules)
    argv = [f"--admin.conf={path}", "--crontabber.error_retry_time=soon"]
    assert config.plain_settings(argv) is None
    with pytest.raises(ConfigError, match="'soon' is not a whole number"):
        config.load_settings(argv)


@pytest.mark.parametrize(
    "environ",
    [
        {"admin__strict": "true"},
        {"admin.conf": "other.ini"},
        {"list-jobs": "1"},
        {"help": ""},
        {"version": "1"},
        {"secrets__sentry__dsn": "https://k@h/1"},
        {"crontabber__class-Hourly__max_runtime": "5"},
        {"crontabber__jobz": "x"},
        {"logging": "INFO"},
        {"PATH": "/bin", "web__port": "8080", "resource__postgresql__sslmode": "require"},
    ],
    ids=",".join,
)
def test_other_names_configman_reads_in_the_environment_go_to_configman(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    path = tmp_path / "crontabber.ini"
    path.write_text("[crontabber]\n    timezone = Europe/Berlin\n")
    assert plain_config.read([f"--admin.conf={path}"], "unused.ini", environ=environ) is None


def test_the_environment_sets_crontabbers_options_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "crontabber.ini"
    path.write_text(
        "[crontabber]\n    timezone = Europe/Berlin\n    database_url = sqlite:///file.sqlite\n"
    )
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/cron",
        "CRONTABBER_X": "1",
        "CRONTABBER__DATABASE_URL": "ignored: configman keeps all-capital names as they are",
        "Logging__level": "ignored: not a name configman has",
        "crontabber__database_url": "sqlite:////elsewhere.sqlite",
        "crontabber__error_retry_time": "7",
        "logging.level": "DEBUG",
    }
    read = plain_config.read([f"--admin.conf={path}"], "unused.ini", environ=environ)
    assert read is not None
    values, conf_path = read
    assert conf_path == str(path)
    assert values.crontabber.timezone == "Europe/Berlin"
    assert values.crontabber.database_url == "sqlite:////elsewhere.sqlite"
    assert values.crontabber.error_retry_time == 7
    assert values.logging.level == "DEBUG"
    quiet = {"PATH": "/bin", "HOME": "/root", "CRONTABBER_X": "1"}
    read = plain_config.read([f"--admin.conf={path}"], "unused.ini", environ=quiet)
    assert read is not None and read[0].crontabber.database_url == "sqlite:///file.sqlite"
    assert read[0].crontabber.error_retry_time == 300


ENVIRONMENTS = {
    "over-the-file": {
        "crontabber__database_url": "postgresql://env@db.example.com/envdb",
        "crontabber__error_retry_time": "7",
        "crontabber__auto_migrate": "no",
        "logging.level": "WARNING",
        "daemon__workers": "2",
        "web__port": "9090",
        "sentry__dsn": "https://env@sentry.example.com/3",
        "CRONTABBER_X": "1",
    },
    "jobs-and-zone": {
        "crontabber__jobs": "{module}.Hourly|1h\n{module}.Nightly|1d|04:00",
        "crontabber__timezone": "Pacific/Auckland",
        "resource__postgresql__host": "env-host",
        "resource__postgresql__port": "7777",
    },
}


@pytest.mark.parametrize("environment", ENVIRONMENTS.values(), ids=ENVIRONMENTS.keys())
def test_options_from_the_environment_read_as_configman_reads_them(
    tmp_path: Path,
    quiet_environment: None,
    modules: list[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
) -> None:
    module = job_module(tmp_path, modules)
    path = tmp_path / "crontabber.ini"
    path.write_text(textwrap.dedent(everything(module)))
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(module=module))
    configman_sees_the_environment(monkeypatch)
    plain, theirs = settings_both_ways(path)
    assert plain == theirs
    if "crontabber__database_url" in environment:
        assert plain.database_url == "postgresql://env@db.example.com/envdb"
        assert (plain.error_retry_time.total_seconds(), plain.auto_migrate) == (7, False)
        assert (plain.log_level, plain.daemon_workers, plain.web_port) == ("WARNING", 2, 9090)
        assert plain.sentry_dsn == "https://env@sentry.example.com/3"
    else:
        assert [spec.app_name for spec in plain.specs] == ["hourly", "nightly"]
        assert plain.database_url.startswith("postgresql://cron:s3cr%3At%2F%40x@env-host:7777/")


def test_a_value_from_the_environment_that_does_not_convert_goes_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = configured(tmp_path, modules)
    monkeypatch.setenv("crontabber__error_retry_time", "soon")
    configman_sees_the_environment(monkeypatch)
    argv = [f"--admin.conf={path}"]
    assert config.plain_settings(argv) is None
    with pytest.raises(ConfigError) as raised:
        config.load_settings(argv)
    assert str(raised.value) == "crontabber.error_retry_time: 'soon' is not a whole number"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("", "    jobz =\n", id="unknown-option"),
        pytest.param("", "    [[class-Hourly]]\n        max_runtime = 5\n", id="job-section"),
        pytest.param("", "[secrets]\n    [[sentry]]\n        dsn = x\n", id="secrets"),
        pytest.param("", "[admin]\n    strict = true\n", id="admin"),
        pytest.param("", "[resource]\n    [[postgresql]]\n        sslmode = x\n", id="nested"),
        pytest.param("", "[resource]\n    database_url = x\n", id="wrong-namespace"),
        pytest.param("", "[web]\n    [[port]]\n", id="section-for-an-option"),
        pytest.param("", "[elsewhere]\n", id="unknown-empty-section"),
        pytest.param("list-jobs = true\n", "", id="command-in-the-file"),
        pytest.param("timezone = UTC\n", "", id="option-outside-its-section"),
    ],
)
def test_unknown_names_in_the_file_go_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str], before: str, after: str
) -> None:
    path = configured(tmp_path, modules, after)
    path.write_text(before + path.read_text())
    assert config.plain_settings([f"--admin.conf={path}"]) is None


def test_configman_reads_a_file_with_an_unknown_option(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    path = configured(tmp_path, modules, "    jobz =\n")
    assert config.plain_settings([f"--admin.conf={path}"]) is None
    settings = config.load_settings([f"--admin.conf={path}"])
    assert [spec.app_name for spec in settings.specs] == ["hourly"]
    assert settings.warnings == (
        "unknown option 'crontabber.jobz' in the configuration: ignored "
        "(--admin.strict makes it an error)",
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("error_retry_time = soon", "crontabber.error_retry_time: 'soon' is not a whole number"),
        ("heartbeat_interval = often", "crontabber.heartbeat_interval: 'often' is not a number"),
        ("auto_migrate = perhaps", "crontabber.auto_migrate: 'perhaps' is not true or false"),
        ("error_retry_time = 5.5", "crontabber.error_retry_time: '5.5' is not a whole number"),
    ],
)
def test_a_value_that_does_not_convert_goes_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str], option: str, expected: str
) -> None:
    path = configured(tmp_path, modules, f"    {option}\n")
    argv = [f"--admin.conf={path}"]
    assert config.plain_settings(argv) is None
    with pytest.raises(ConfigError) as raised:
        config.load_settings(argv)
    assert str(raised.value) == expected


def test_a_file_not_ending_in_ini_goes_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    path = configured(tmp_path, modules, name="crontabber.conf")
    assert config.plain_settings([f"--admin.conf={path}"]) is None
    assert plain_config.read([f"--admin.conf={path}"], "unused.ini", environ={}) is None


def test_a_file_that_is_not_utf8_goes_to_configman(tmp_path: Path) -> None:
    path = tmp_path / "crontabber.ini"
    path.write_bytes(b"[crontabber]\nhost_name = caf\xe9\n")
    assert plain_config.read([f"--admin.conf={path}"], "unused.ini", environ={}) is None


WITH_OPTIONS = Job(
    "WithOptions",
    "with_options",
    attributes="""
        required_config = Namespace()
        required_config.add_option("x", default=1)
    """,
)


def test_a_job_with_options_of_its_own_goes_to_configman(
    tmp_path: Path, quiet_environment: None, modules: list[str]
) -> None:
    plain_module = job_module(tmp_path, modules)
    module = unique(modules, "optionjobs")
    write_job_module(tmp_path, module, WITH_OPTIONS, imports="from configman import Namespace")
    path = tmp_path / "crontabber.ini"
    path.write_text(
        f"[crontabber]\n    jobs = '''\n        {plain_module}.Hourly|1h\n"
        f"        {module}.WithOptions|1h\n    '''\n"
    )
    argv = [f"--admin.conf={path}"]
    assert config.plain_settings(argv) is None
    settings = config.load_settings(argv)
    assert settings.job_config is None  # configman read it
    assert [spec.config.x for spec in settings.specs if spec.app_name == "with_options"] == [1]


# 4. The real command


# It notes what its config is; it imports a module of its own, which -X importtime
# names (as it does not name a module imported through import_module).
PROBE = Job(
    "Probe",
    "probe",
    run="note(self.config.logger.name, type(self.config).__name__, self.config.max_runtime)",
)


def test_a_tick_runs_its_job_without_configman_reading_first(
    tmp_path: Path, quiet_environment: None
) -> None:
    module = f"probejobs_{uuid.uuid4().hex}"
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    configs = {}
    for directory in (fast, slow):
        directory.mkdir()
        write_job_module(
            directory, module, PROBE, imports=f"import {module}_marker", notes="probe.txt"
        )
        (directory / f"{module}_marker.py").write_text("")
        configs[directory] = write_config(directory, f"{module}.Probe|1d")
    # The plain path: the job's module is imported before configman, which only
    # makes the job's config when the job runs.
    order = import_order(f"--admin.conf={configs[fast]}", cwd=fast)
    marker = f"{module}_marker"
    assert marker in order and "configman" in order
    assert order.index(marker) < order.index("configman")
    # configman's path: an option on the command line sends the run to configman.
    done = run_crontabber(
        f"--admin.conf={configs[slow]}", "--crontabber.error_retry_time=300", cwd=slow
    )
    assert done.status == 0, done.stderr
    fast_lines = (fast / "probe.txt").read_text().splitlines()
    slow_lines = (slow / "probe.txt").read_text().splitlines()
    assert fast_lines == slow_lines
    assert len(fast_lines) == 1
    logger_name, type_name, max_runtime = fast_lines[0].split()
    assert (logger_name, type_name, max_runtime) == ("crontabber", "DotDictWithAcquisition", "0.0")
    # An idle tick (nothing due for a day) opens the state and imports no configman.
    packages = imported_packages(f"--admin.conf={configs[fast]}", cwd=fast)
    assert "crontabber" in packages and "sqlite3" in packages
    assert packages.isdisjoint({"configman", "configobj"}), sorted(packages)
    assert (fast / "probe.txt").read_text().splitlines() == fast_lines
