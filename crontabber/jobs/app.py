"""The class every job derives from.

A job is a subclass with an ``app_name``, optionally ``depends_on`` and
``required_config`` (a configman ``Namespace``), and a ``run()`` method.
``BaseCronApp`` is the name the original crontabber used; it is the same class.
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any, ClassVar


def as_app_names(depends_on: str | Sequence[str] | None) -> tuple[str, ...]:
    """``depends_on`` as a tuple of app names, whichever form it was written in."""
    if not depends_on:
        return ()
    if isinstance(depends_on, str):
        return tuple(name.strip() for name in depends_on.split(",") if name.strip())
    return tuple(depends_on)


class App:
    """Base class of a crontabber job.

    ``self.config`` holds the job's own options (its ``[[class-Name]]`` section
    of the ini file), ``self.job_information`` its state row as this run's claim
    left it (a :class:`crontabber.store.records.JobState`: ``ongoing_token`` is
    the claim's), and ``self.claim`` the claim itself
    (a :class:`crontabber.store.fencing.JobClaim`: its token, fence number and
    ``guard(connection)``), set before ``run()`` is called.
    """

    app_name: ClassVar[str] = ""
    app_version: ClassVar[str] = "1.0"
    app_description: ClassVar[str] = ""
    depends_on: ClassVar[str | Sequence[str]] = ()
    required_config: ClassVar[Any] = None
    # Seconds after which a run is interrupted and recorded as failed (None: no limit);
    # the ini file's [[class-Name]] max_runtime overrides it.
    max_runtime: ClassVar[float | None] = None

    def __init__(self, config: Any = None, job_information: Any = None) -> None:
        self.config = config
        self.job_information = job_information
        self.claim: Any = None  # the runner sets it before run()

    @classmethod
    def get_required_config(cls) -> Any:
        """The job's options: the ``required_config`` of every class in its MRO, merged.

        As configman's ``RequiredConfig`` does: a subclass's options join, and
        override, those of its bases. A class that has none gives None.
        """
        found = [
            klass.__dict__["required_config"]
            for klass in reversed(cls.__mro__)
            if klass.__dict__.get("required_config") is not None
        ]
        if len(found) <= 1:
            return found[0] if found else None
        from crontabber.config import configman_compat

        merged = configman_compat.load().Namespace()
        for namespace in found:
            merged.update(namespace)
        return merged

    def _run_proxy(self, *args: Any, **kwargs: Any) -> Any:
        """The original's indirection to ``run``; kept for apps that call it."""
        return self.run(*args, **kwargs)

    def run(self, *args: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")


BaseCronApp = App
