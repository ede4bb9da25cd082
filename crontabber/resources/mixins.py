"""Class decorators that give jobs resources: database connections, transactions, processes.

The names follow the original mozilla/crontabber::

    @using_postgres()                          # self.database_connection_factory
    @as_single_postgres_transaction()          # run(connection) is one transaction
    class Cleanup(App): ...

Every option a decorator adds goes into a copy of the class's
``required_config``, so a base class's namespace is never changed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from crontabber.config import configman_compat
from crontabber.config.job_config import local_keys
from crontabber.resources import DEFAULT_BACKOFF_SECONDS, DEFAULT_MAX_RETRIES
from crontabber.resources.processes import ProcessTimeout, with_subprocess

__all__ = [
    "ProcessTimeout",
    "as_backfill_cron_app",
    "as_single_postgres_transaction",
    "using_postgres",
    "with_postgres_connection_as_argument",
    "with_postgres_transactions",
    "with_resource_connection_as_argument",
    "with_single_postgres_transaction",
    "with_single_transaction",
    "with_subprocess",
    "with_transactional_resource",
]

C = TypeVar("C", bound=type)
POSTGRES = "database"
POSTGRES_FACTORY = "crontabber.connection_factory.ConnectionFactory"
POSTGRES_REFERENCE = "resource.postgresql"


def as_backfill_cron_app(cls: C) -> C:
    """Mark a job as a backfill job (``is_backfill = True``); the runner does the rest."""
    cls.is_backfill = True
    cls._is_backfill_app = True  # the original's name for the mark
    return cls


# -- transactional resources ------------------------------------------------


def with_transactional_resource(
    resource_class: type | str, name: str, reference_value_from: str | None = None
) -> Callable[[C], C]:
    """Give the job ``self.<name>_connection_factory`` and ``self.<name>_transaction_executor``.

    As in the original crontabber, the job's options get a namespace ``<name>``
    holding two class options, ``<name>_class`` (default ``resource_class``, a
    class or its dotted path) and ``<name>_transaction_executor_class`` (default
    :class:`crontabber.resources.transaction_executor.TransactionExecutor`), whose
    defaults come from ``reference_value_from`` (``resource.postgresql`` for
    PostgreSQL) when given; configman adds the chosen classes' own options to
    the namespace. The job's own section gets ``<name>_max_retries`` (default
    3), ``<name>_backoff_seconds`` (default 1.0) and, for this package's
    factories, short forms of their options (``dbname=`` for the job alone).

    The first use builds ``config.<name>.<name>_class(config.<name>)`` and
    ``config.<name>.<name>_transaction_executor_class(config.<name>, factory)``.
    A config without that namespace (a plain object, in scripts and tests) gets
    ``resource_class(config)`` and the default executor over ``config``.
    """
    factory_class = (
        import_dotted(resource_class) if isinstance(resource_class, str) else resource_class
    )
    factory_attr = f"{name}_connection_factory"
    executor_attr = f"{name}_transaction_executor"

    def build_factory(app: Any) -> Any:
        section = resource_section(app.config, name)
        if section is None:
            return factory_class(app.config)
        return section[f"{name}_class"](section)

    def build_executor(app: Any) -> Any:
        from crontabber.resources.transaction_executor import TransactionExecutor

        section = resource_section(app.config, name)
        if section is None:
            executor_class, config = TransactionExecutor, app.config
        else:
            executor_class, config = section[f"{name}_transaction_executor_class"], section
        factory = getattr(app, factory_attr)
        if "resource_name" in inspect.signature(executor_class).parameters:
            return executor_class(config, factory, resource_name=name)
        return executor_class(config, factory)

    def decorate(cls: C) -> C:
        namespace = copied_required_config(cls)
        add_resource_options(namespace, resource_class, name, reference_value_from)
        job_options = getattr(factory_class, "job_section_options", None)
        for key, resource_option in dict(job_options() if job_options else {}).items():
            if key not in namespace:
                namespace[key] = resource_option.copy()
        for key, default, doc in (
            (
                f"{name}_max_retries",
                DEFAULT_MAX_RETRIES,
                f"how often a transaction on {name} is retried after a lost connection",
            ),
            (
                f"{name}_backoff_seconds",
                DEFAULT_BACKOFF_SECONDS,
                f"seconds before the first retry on {name}; doubled for each further one",
            ),
        ):
            if key not in namespace:
                namespace.add_option(
                    key, default=default, doc=doc, from_string_converter=type(default)
                )
        cls.required_config = namespace
        # Which options of the job's own section stand for the same ones of <name>.
        cls._crontabber_job_section_options = {
            **getattr(cls, "_crontabber_job_section_options", {}),
            name: tuple(dict(job_options() if job_options else {})),
        }
        setattr(cls, factory_attr, PerInstance(factory_attr, build_factory))
        setattr(cls, executor_attr, PerInstance(executor_attr, build_executor))
        return cls

    return decorate


EXECUTOR_CLASS = "crontabber.transaction_executor.TransactionExecutor"


def add_resource_options(
    namespace: Any, resource_class: type | str, name: str, reference_value_from: str | None
) -> None:
    """The original's ``<name>`` namespace: the resource's class and its executor's class."""
    class_converter = configman_compat.load().converters.class_converter

    if name not in namespace:
        namespace.namespace(name)
    section = namespace[name]
    if f"{name}_class" not in section:
        section.add_option(
            f"{name}_class",
            default=resource_class,
            doc=f"the class of {name}'s connections",
            from_string_converter=class_converter,
            reference_value_from=reference_value_from,
        )
    if f"{name}_transaction_executor_class" not in section:
        section.add_option(
            f"{name}_transaction_executor_class",
            default=EXECUTOR_CLASS,
            doc="a class that will execute transactions",
            from_string_converter=class_converter,
            reference_value_from=reference_value_from,
        )


def resource_section(config: Any, name: str) -> Any:
    """The job's own ``<name>`` namespace, or None when its config has none (a plain object).

    Only the job's own keys count: configman's mapping would acquire a
    missing key from the sections above.
    """
    if not isinstance(config, Mapping) or name not in local_keys(config):
        return None
    section = config[name]
    if isinstance(section, Mapping) and f"{name}_class" in local_keys(section):
        return section
    return None


def with_resource_connection_as_argument(name: str) -> Callable[[C], C]:
    """``run(connection, ...)`` gets a connection from ``self.<name>_connection_factory``.

    The connection is closed when ``run`` returns or raises; what ``run`` did
    not commit is rolled back. Use with :func:`with_transactional_resource`.
    """

    def decorate(cls: C) -> C:
        adapt_run(cls, ("connection", name))
        return cls

    return decorate


def with_single_transaction(name: str) -> Callable[[C], C]:
    """``run(connection, ...)`` is one transaction through ``self.<name>_transaction_executor``.

    It commits when ``run`` returns, rolls back when it raises, and runs it again
    on a new connection after a transient connection failure.
    """

    def decorate(cls: C) -> C:
        adapt_run(cls, ("transaction", name))
        return cls

    return decorate


def using_postgres() -> Callable[[C], C]:
    """PostgreSQL as ``self.database_connection_factory`` and ``self.database_transaction_executor``.

    :class:`crontabber.resources.connection_factory.ConnectionFactory`, with defaults from
    ``[resource] [[postgresql]]``, as in the original. Configured by ``host``,
    ``port``, ``dbname``, ``user`` and ``password`` (or ``database_url``) in the
    job's ``[[[database]]]`` section, or in its own section for this job alone.
    """
    return with_transactional_resource(POSTGRES_FACTORY, POSTGRES, POSTGRES_REFERENCE)


def with_postgres_connection_as_argument() -> Callable[[C], C]:
    """:func:`using_postgres`, and ``run(connection)`` gets a PostgreSQL connection."""
    return compose(using_postgres(), with_resource_connection_as_argument(POSTGRES))


def as_single_postgres_transaction() -> Callable[[C], C]:
    """:func:`using_postgres`, and ``run(connection)`` is one PostgreSQL transaction."""
    return compose(using_postgres(), with_single_transaction(POSTGRES))


# The names used by older crontabber releases.
with_postgres_transactions = using_postgres
with_single_postgres_transaction = as_single_postgres_transaction


def compose(*decorators: Callable[[C], C]) -> Callable[[C], C]:
    def decorate(cls: C) -> C:
        for decorator in decorators:
            cls = decorator(cls)
        return cls

    return decorate


def import_dotted(path: str) -> type:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} is not a dotted path to a class")
    return getattr(importlib.import_module(module_name), attr)


def copied_required_config(cls: type) -> Any:
    """A new namespace holding copies of the options the class has so far."""
    namespace_class = configman_compat.load().Namespace
    current = cls.get_required_config() if hasattr(cls, "get_required_config") else None
    current = current if current is not None else getattr(cls, "required_config", None)
    if isinstance(current, namespace_class):
        return current.safe_copy()
    namespace = namespace_class()
    for key, value in dict(current or {}).items():
        namespace[key] = value.copy() if hasattr(value, "copy") else value
    return namespace


class PerInstance:
    """An attribute built from the instance on first use and kept on it."""

    def __init__(self, attr: str, build: Callable[[Any], Any]) -> None:
        self.attr = attr
        self.build = build

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.build(instance)
        instance.__dict__[self.attr] = value
        return value


# -- run() adapters ---------------------------------------------------------
#
# The runner calls ``app.run()``. An adapted class's ``run`` is wrapped so that,
# called without its connection, it gets one; called with every argument it
# needs (``super().run(connection)``, a test) it runs as written. Subclasses
# that define their own ``run`` are wrapped as they are created.


def adapt_run(cls: type, how: tuple[str, str]) -> None:
    current = cls.__dict__.get("_crontabber_run_with")
    if current is not None and current != how:
        raise TypeError(
            f"{cls.__name__}.run already gets its connection as {current[0]} on {current[1]!r}"
        )
    cls._crontabber_run_with = how
    wrap_run(cls)
    if not getattr(cls, "_crontabber_wraps_subclasses", False):
        own_hook = cls.__dict__.get("__init_subclass__")

        def __init_subclass__(subclass: type, **kwargs: Any) -> None:
            if own_hook is not None:
                own_hook.__func__(subclass, **kwargs)
            else:
                super(cls, subclass).__init_subclass__(**kwargs)
            wrap_run(subclass)

        cls.__init_subclass__ = classmethod(__init_subclass__)
        cls._crontabber_wraps_subclasses = True


def wrap_run(cls: type) -> None:
    run = cls.run
    if getattr(run, "_crontabber_adapted", False):
        return
    signature = inspect.signature(run)

    @functools.wraps(run)
    def adapted_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if accepts(signature, self, args, kwargs):
            return run(self, *args, **kwargs)
        # Outside the except block: run's own errors must not chain the bind failure.
        return run_with_connection(self, run, args, kwargs)

    adapted_run._crontabber_adapted = True  # type: ignore[attr-defined]
    cls.run = adapted_run


def accepts(signature: inspect.Signature, app: Any, args: tuple, kwargs: dict) -> bool:
    """Whether ``run`` was called with every argument it needs."""
    try:
        signature.bind(app, *args, **kwargs)
    except TypeError:
        return False
    return True


def run_with_connection(app: Any, run: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    kind, name = type(app)._crontabber_run_with
    attr = f"{name}_connection_factory" if kind == "connection" else f"{name}_transaction_executor"
    if not hasattr(app, attr):
        raise TypeError(
            f"{type(app).__name__} has no {attr}: decorate it with "
            f"with_transactional_resource(..., {name!r}) too"
        )
    if kind == "transaction":
        return getattr(app, attr)(functools.partial(run, app), *args, **kwargs)
    factory = getattr(app, attr)
    with factory() as connection:
        try:
            return run(app, connection, *args, **kwargs)
        finally:
            close_connection = getattr(factory, "close_connection", None)
            if close_connection is not None:
                close_connection(connection, force=True)
