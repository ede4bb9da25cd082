"""crontabber's own options, written down once as plain data.

:func:`crontabber.config.configman_edge.definitions` turns this table into configman's
option definitions (``--help``, ``--admin.print_conf`` and every run that
needs configman); :mod:`crontabber.config.plain` reads a tick's ini file
with it and no configman at all. A row's ``kind`` says how a value given as
text becomes the option's value: ``str``, ``int``, ``float``, ``bool`` (one of
:data:`~crontabber.config.values.BOOLEAN_WORDS`), ``text`` (a string, whose commas
survive an unquoted ini value: :func:`~crontabber.config.values.comma_joined`) or
``jobs`` (the jobs setting).
"""

from __future__ import annotations

from crontabber.config.values import BOOLEAN_WORDS, comma_joined, parse_boolean
from crontabber.record import record

__all__ = ["BOOLEAN_WORDS", "COMMAND_OPTIONS", "OPTIONS", "comma_joined", "parse_boolean"]


@record
class Option:
    """One option: its dotted name, default, how text converts (``kind``), its ``--help``
    line, and whether it is a secret or takes its value from another option."""

    name: str
    default: object
    kind: str
    doc: str
    secret: bool = False
    reference_value_from: str | None = None


EVENTS = ("failed", "recovered", "late", "stuck", "auto_paused")  # what [notify] sends

# What the ini file and the command line set, in the order --help lists them.
OPTIONS = (
    Option(
        "crontabber.jobs",
        "",
        "jobs",
        "the jobs, one per line: python.module.ClassName|FREQUENCY[|HH:MM][|TIMEZONE] "
        "or python.module.ClassName|cron(MIN HOUR DAY MONTH WEEKDAY)[|TIMEZONE]",
    ),
    Option(
        "crontabber.timezone",
        "UTC",
        "str",
        "IANA time zone (e.g. Europe/Berlin) of the jobs' HH:MM times and cron "
        "expressions; a jobs line can name its own",
    ),
    Option(
        "crontabber.database_url",
        "",
        "text",
        "URL of the state database (postgresql://... or sqlite:///path); "
        "empty: a SQLite file beside the config file",
        secret=True,
    ),
    Option(
        "crontabber.error_retry_time",
        300,
        "int",
        "seconds after a failed run before the job is tried again",
    ),
    Option(
        "crontabber.error_retry_backoff",
        1.0,
        "float",
        "the n-th retry of a failing job waits error_retry_time x this^(n-1) (1: always the same)",
    ),
    Option(
        "crontabber.max_error_retry_time",
        0.0,
        "float",
        "the longest a retry waits, in seconds (0: no limit)",
    ),
    Option(
        "crontabber.max_consecutive_failures",
        0,
        "int",
        "pause a job after this many failures in a row, until --resume (0: never)",
    ),
    Option(
        "crontabber.jitter_seconds",
        0.0,
        "float",
        "move each job's scheduled runs by an offset in [0, this), the same on every "
        "host, so that the jobs do not all start in the same second",
    ),
    Option(
        "crontabber.log_retention_days",
        90,
        "int",
        "days crontabber_log rows are kept; older ones are pruned about once a day "
        "(0: keep every row)",
    ),
    Option(
        "crontabber.max_ongoing_age_hours",
        12.0,
        "float",
        "hours after which a claim is treated as abandoned and may be taken over",
    ),
    Option(
        "crontabber.heartbeat_interval",
        30.0,
        "float",
        "seconds between refreshes of a running job's heartbeat",
    ),
    Option(
        "crontabber.heartbeat_stale_intervals",
        3,
        "int",
        "a claim whose heartbeat is this many intervals old is abandoned and may be taken over",
    ),
    Option(
        "crontabber.host_name",
        "",
        "str",
        "this host's name in claims (empty: the system's host name); unique per host",
    ),
    Option(
        "crontabber.state_retry_seconds",
        60.0,
        "float",
        "how long writes to the state database are retried through connection trouble",
    ),
    Option(
        "crontabber.state_timeout_seconds",
        10.0,
        "float",
        "how long one statement to the state database may go unanswered before its "
        "connection is given up and the statement retried on a new one; 0: no limit",
    ),
    Option(
        "crontabber.run_output_kb",
        64,
        "int",
        "KiB of what each run prints and logs kept with it in crontabber_log (its "
        "start and its end; 0: none)",
    ),
    Option(
        "crontabber.auto_migrate",
        True,
        "bool",
        "migrate the state database's schema on first use; False: only with --migrate",
    ),
    Option(
        "crontabber.isolate_runs",
        True,
        "bool",
        "run each job in a child process, in "
        "a process group and session of its own; False: in crontabber's own process",
    ),
    Option(
        "resource.postgresql.host",
        "",
        "text",
        "PostgreSQL host (used when database_url is empty)",
    ),
    Option("resource.postgresql.port", 5432, "int", "PostgreSQL port"),
    Option("resource.postgresql.dbname", "", "str", "PostgreSQL database name"),
    Option("resource.postgresql.user", "", "str", "PostgreSQL user"),
    Option("resource.postgresql.password", "", "str", "PostgreSQL password", secret=True),
    Option(
        "sentry.dsn",
        "",
        "str",
        "Sentry DSN: job failures are reported there",
        secret=True,
        reference_value_from="secrets.sentry",
    ),
    Option(
        "web.host",
        "127.0.0.1",
        "str",
        "with --serve (or --daemon and web.port): the status page's address; "
        "anything but loopback needs web.auth_token",
    ),
    Option(
        "web.port",
        "",
        "str",
        "with --serve: the status page's port (empty: 8080); with --daemon the page "
        "is served only when this is set",
    ),
    Option(
        "web.auth_token",
        "",
        "str",
        "the token the status page asks for (bearer, or the password of basic auth); "
        "required to serve beyond loopback",
        secret=True,
    ),
    Option(
        "notify.webhook_url",
        "",
        "text",
        "a URL each event is POSTed to as JSON (Slack and Mattermost show its text)",
        secret=True,
    ),
    Option("notify.smtp_host", "", "str", "the SMTP server events are mailed through"),
    Option("notify.smtp_port", 587, "int", "the SMTP server's port"),
    Option("notify.smtp_user", "", "str", "the SMTP login (empty: none)"),
    Option("notify.smtp_password", "", "str", "the SMTP password", secret=True),
    Option("notify.smtp_starttls", True, "bool", "use STARTTLS (the server must offer it)"),
    Option(
        "notify.smtp_ssl",
        False,
        "bool",
        "TLS from the connection's start (SMTPS, usually port 465) in place of STARTTLS",
    ),
    Option("notify.email_from", "", "str", "the From address of event mails"),
    Option("notify.email_to", "", "text", "where event mails go (comma-separated)"),
    Option("notify.events", ",".join(EVENTS), "text", "the events sent (comma-separated)"),
    Option("notify.repeat_after", 3600.0, "float", "seconds before a failing job is said again"),
    Option("notify.late_after", 300.0, "float", "seconds due and not started: late"),
    Option("notify.stuck_after", 0.0, "float", "seconds running: stuck (0: past max_runtime)"),
    Option("notify.tick_ping_url", "", "text", "a URL called after every tick", secret=True),
    Option("notify.timeout", 10.0, "float", "seconds a delivery or a ping may take"),
    Option(
        "daemon.poll_seconds",
        10.0,
        "float",
        "with --daemon: the longest sleep between ticks, to see what other hosts changed",
    ),
    Option(
        "daemon.shutdown_grace_seconds",
        30.0,
        "float",
        "with --daemon: how long a running job may finish after SIGTERM or SIGINT",
    ),
    Option(
        "daemon.workers",
        1,
        "int",
        "with --daemon: worker processes, each a daemon of its own, so that independent "
        "jobs run at the same time",
    ),
    Option(
        "logging.level",
        "",
        "str",
        "log level: DEBUG, INFO, WARNING or ERROR; empty: INFO on a terminal, else "
        "WARNING, so that a run from cron in which nothing failed prints nothing",
    ),
    Option(
        "logging.file",
        "",
        "str",
        "a file that gets the whole log too (at logging.level, or INFO when it is empty)",
    ),
)


@record
class CommandSwitch:
    """A switch given on the command line, never written to a file.

    An admin command's switch names its ``handler`` (a function of
    :mod:`crontabber.cli.commands`) and whether that needs the state store; a
    switch without a handler modifies a command (``--json``, ``--force``) or is
    answered before any configuration is read (``--version``).
    """

    name: str
    default: object
    doc: str
    short_form: str | None = None
    handler: str | None = None
    needs_store: bool = False


# The command-line switches, in the order --help lists them: every admin command is one
# row (its switch, help, whether it needs the state store, its handler).
COMMAND_OPTIONS = (
    CommandSwitch(
        "list-jobs", False, "list the jobs and their state", "l", "list_jobs", needs_store=True
    ),
    CommandSwitch("json", False, "with --list-jobs, --history, --audit-log: one JSON per line"),
    CommandSwitch(
        "pause",
        "",
        "pause a job on every host (with --reason, --until), until --resume",
        handler="pause",
        needs_store=True,
    ),
    CommandSwitch("resume", "", "resume a paused job", handler="resume", needs_store=True),
    CommandSwitch(
        "run-now",
        "",
        "make a job due now, for whichever host ticks next (dependencies still hold)",
        handler="run_now",
        needs_store=True,
    ),
    CommandSwitch(
        "cancel",
        "",
        "stop a job's running run, on whatever host, at its next heartbeat",
        handler="cancel",
        needs_store=True,
    ),
    CommandSwitch(
        "history",
        "",
        "a job's last runs: start, duration, host, pid, outcome, how started, output",
        handler="history",
        needs_store=True,
    ),
    CommandSwitch(
        "audit-log",
        False,
        "who paused, resumed, ran, cancelled, reset or removed which job, and when",
        handler="audit_log",
        needs_store=True,
    ),
    CommandSwitch(
        "reason",
        "",
        "with --pause, --resume, --run-now, --cancel or --reset-job: why (kept in the audit log)",
    ),
    CommandSwitch(
        "until",
        "",
        "with --pause: when it resumes by itself, a time (2026-12-24T06:00Z) or a "
        "duration (90m, 2h, 3d)",
    ),
    CommandSwitch(
        "reset-job",
        "",
        "forget a job's state (app name or module.ClassName)",
        "r",
        "reset_job",
        needs_store=True,
    ),
    CommandSwitch(
        "job",
        "",
        "run only this job (app name or module.ClassName)",
        "j",
        "run_jobs",
        needs_store=True,
    ),
    CommandSwitch(
        "force",
        False,
        "with --job: run it now; with --reset-job: even if ongoing; "
        "with --audit-ghosts: remove them",
        "f",
    ),
    CommandSwitch(
        "configtest",
        False,
        "check the configuration; exit with the number of misconfigured jobs",
        handler="configtest",
    ),
    CommandSwitch(
        "audit-ghosts",
        False,
        "list app names in the state table but not in this configuration",
        handler="audit_ghosts",
        needs_store=True,
    ),
    CommandSwitch(
        "nagios",
        False,
        "Nagios/Icinga check: one line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
        "n",
        "nagios",
        needs_store=True,
    ),
    CommandSwitch(
        "graph", False, "the dependency graph in Graphviz DOT", handler="graph", needs_store=True
    ),
    CommandSwitch("sentrytest", False, "send a test event to Sentry", handler="sentrytest"),
    CommandSwitch(
        "migrate",
        False,
        "apply the state database's schema migrations",
        handler="migrate",
        needs_store=True,
    ),
    CommandSwitch(
        "serve",
        False,
        "serve the status page, JSON API and /metrics (read-only) on web.host:web.port",
        handler="serve",
    ),
    CommandSwitch("init", "", "write a starter crontabber.ini and job into DIR, then stop"),
    CommandSwitch("version", False, "print the version", "v"),
)

# The admin commands by switch name: the rows with a handler.
COMMAND_SWITCHES = {switch.name: switch for switch in COMMAND_OPTIONS if switch.handler}
