"""Every workaround configman 1.3.0 needs on Python 3.10+, in one place.

configman is unmaintained (its last release is from 2016). Three things break
on a modern Python, and each is mended here before configman is used:

1. ``collections.Mapping`` and the other ABC aliases were removed from
   ``collections`` in Python 3.10 (mozilla/configman#172); configman refers to
   them at import time.
2. ``inspect.getargspec`` was removed in Python 3.11; configman's argparse
   support calls it.
3. ``DotDictWithAcquisition.__getitem__`` links each temporary namespace made
   for a missing part of a dotted key to its parent through a weak proxy.  For
   keys with two or more missing parts the intermediate temporary is garbage
   collected at once and the lookup fails with ``ReferenceError``.

4. An option whose ``reference_value_from`` names an option that was declared
   directly (crontabber declares ``resource.postgresql.host`` and its kin)
   makes ``ConfigurationManager`` fail with ``KeyError``: it only tracks the
   targets it created itself. (Not a Python-version problem: a configman bug.)

Call :func:`load` (not ``import configman``) wherever configman is needed; it
applies the patches once and returns the configman module.
"""

from __future__ import annotations

import collections
import collections.abc
import inspect
import types
from typing import Any

ABC_ALIASES = (
    "Callable",
    "Hashable",
    "Iterable",
    "Mapping",
    "MutableMapping",
    "MutableSequence",
    "MutableSet",
    "Sequence",
    "Set",
)

_applied = False


def restore_collections_aliases() -> None:
    """Put the ABC aliases configman uses back on the ``collections`` module."""
    for name in ABC_ALIASES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")


def _getargspec(func: Any) -> ArgSpec:
    spec = inspect.getfullargspec(func)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def restore_getargspec() -> None:
    """Give ``inspect`` back the ``getargspec`` removed in Python 3.11."""
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = _getargspec  # type: ignore[attr-defined]


def fix_dotdict_acquisition(dotdict_module: types.ModuleType) -> None:
    """Keep the temporaries of a dotted lookup alive while it walks the key."""
    cls = dotdict_module.DotDictWithAcquisition

    def __getitem__(self: Any, key: str) -> Any:
        parts = key.split(".")
        current = self
        for index, part in enumerate(parts):
            try:
                current = getattr(current, part)
            except KeyError:
                if index == len(parts) - 1:
                    raise
                temporary = cls()
                # A strong reference: the temporary must outlive this loop step.
                temporary.__dict__["_parent"] = current
                current = temporary
        return current

    cls.__getitem__ = __getitem__


def fix_declared_reference_targets(config_manager_module: types.ModuleType) -> None:
    """Track declared reference targets too, so their values reach the options referring to them."""
    cls = config_manager_module.ConfigurationManager
    create = cls._create_reference_value_options
    option_class = config_manager_module.Option

    def _create_reference_value_options(self: Any, keys: list[str], finished_keys: Any) -> Any:
        targets = create(self, keys, finished_keys)
        for key in keys:
            an_option = self.option_definitions[key]
            if isinstance(an_option, option_class) and an_option.reference_value_from:
                targets.add(f"{an_option.reference_value_from}.{key.rsplit('.', 1)[-1]}")
        return targets

    cls._create_reference_value_options = _create_reference_value_options


def load() -> types.ModuleType:
    """Apply every workaround (once) and return the ``configman`` module."""
    global _applied
    restore_collections_aliases()
    restore_getargspec()
    import configman
    import configman.config_manager
    import configman.dotdict

    if not _applied:
        fix_dotdict_acquisition(configman.dotdict)
        fix_declared_reference_targets(configman.config_manager)
        _applied = True
    return configman
