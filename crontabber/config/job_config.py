"""What a job sees as ``self.config``: its section of configman's mapping, finished at the edge.

As in the original crontabber, a job's section is a configman
``DotDictWithAcquisition``: a name it lacks is looked up in the sections
above it, up to the top, where :func:`crontabber.config.configman_edge.read_config` puts
``logger``. A resource decorator gives the section a namespace per resource
(``database``), filled by configman from the resource's classes and
``[resource] [[postgresql]]``. Here the job's own short forms of those options
are applied, so ``self.config.database.dbname`` is what the connection uses.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


def local_keys(mapping: Any) -> list[str]:
    """The mapping's own keys; ``in`` on configman's mapping also finds acquired ones."""
    return list(mapping.keys())


def apply_job_section_options(app_class: type, section: Any) -> None:
    """Copy the resource options given in the job's own section into its resource namespaces.

    ``[[class-Name]] dbname=x`` is the short form of ``[[class-Name]]
    [[[database]]] dbname=x`` for the options a decorator declared as such
    (empty by default, so an empty value means "not given"); given, it wins.
    """
    if not isinstance(section, Mapping):
        return
    own = local_keys(section)
    declared: dict[str, tuple[str, ...]] = getattr(app_class, "_crontabber_job_section_options", {})
    for name, keys in declared.items():
        if name not in own or not isinstance(section[name], Mapping):
            continue
        namespace = section[name]
        namespace_keys = local_keys(namespace)
        for key in keys:
            if key in own and key in namespace_keys and section[key] not in ("", None):
                namespace[key] = section[key]
