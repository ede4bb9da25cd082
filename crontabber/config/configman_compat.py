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

The rest are configman bugs an operator meets on the command line:

5. A boolean option cannot be given a value (``--crontabber.auto_migrate=False``:
   "must not have an argument"), and the bare switch flips the default rather
   than meaning True.
6. A value that fails conversion is reported as "In 'count', '<class 'int'>'
   fails to convert 'lots'", without the option's namespace, and a boolean
   takes any word it does not know as False.
7. ``--help`` shows an empty secret as ``*********``.
8. An ini file that starts with a UTF-8 byte-order mark is refused
   ("Invalid line"), and ini files are read in the locale's encoding.

Call :func:`load` (not ``import configman``) wherever configman is needed; it
applies the patches once and returns the configman module.
"""

from __future__ import annotations

import collections
import collections.abc
import io
import os
import re
import sys
import types
from collections.abc import Sequence

from crontabber.config.options import parse_boolean

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

# getopt and json are imported where they are used: this module is imported with
# the package, by every run, and most runs never start configman.

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
    import inspect

    spec = inspect.getfullargspec(func)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def restore_getargspec() -> None:
    """Give ``inspect`` back the ``getargspec`` removed in Python 3.11."""
    import inspect  # here: a tick that never starts configman does not import it

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


def _switch_values(
    argv: Sequence[str], long_options: Sequence[str]
) -> tuple[list[str], dict[str, list[bool | str]]]:
    """``argv`` with ``--switch=VALUE`` turned into ``--switch``, and each switch's values
    in order (True for a bare ``--switch``), so getopt accepts a value for a boolean."""
    import getopt

    rewritten: list[str] = []
    values: dict[str, list[bool | str]] = {}
    for index, arg in enumerate(argv):
        if arg == "--":
            rewritten.extend(argv[index:])
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            try:
                takes_argument, full_name = getopt.long_has_args(name, list(long_options))
            except getopt.GetoptError:  # unknown or ambiguous: getopt says so
                takes_argument, full_name = True, name
            if not takes_argument:
                values.setdefault(full_name, []).append(value if has_value else True)
                rewritten.append("--" + full_name)
                continue
        rewritten.append(arg)
    return rewritten, values


def fix_boolean_switches(getopt_source_module: types.ModuleType) -> None:
    """``--switch`` means True and ``--switch=VALUE`` sets it, for every boolean option."""
    import getopt

    source_class = getopt_source_module.ValueSource
    not_an_option = getopt_source_module.NotAnOptionError
    dotdict_class = getopt_source_module.DotDict

    def get_values(
        self: Any, config_manager: Any, ignore_mismatches: bool, obj_hook: Any = dotdict_class
    ) -> Any:
        short_options, long_options = self.getopt_create_opts(config_manager.option_definitions)
        argv, switch_values = _switch_values(self.argv_source, long_options)
        parse = source_class.getopt_with_ignore if ignore_mismatches else getopt.gnu_getopt
        try:
            options, config_manager.args = parse(argv, short_options, long_options)
        except getopt.GetoptError as exc:
            raise not_an_option(str(exc)) from None
        values = obj_hook()
        for option_name, option_value in options:
            if option_name.startswith("--"):
                name = option_name[2:]
                value = switch_values[name].pop(0) if name in switch_values else option_value
            else:
                name = self.find_name_with_short_form(
                    option_name[1:], config_manager.option_definitions, ""
                )
                if not name:
                    raise not_an_option(f"{option_name[1:]} is not a valid short form option")
                takes_argument = option_name[1] + ":" in short_options
                value = option_value if takes_argument else True
            values[name] = value
        arguments = self._get_arguments(config_manager.option_definitions, values)
        for name, value in zip(arguments, config_manager.args, strict=False):
            values[name] = value
        return values

    source_class.get_values = get_values


def expected_in_words(converter: Any) -> str:
    """What a converter accepts, for an operator: "a whole number", "true or false"..."""
    import json

    from configman import converters

    words: dict[Any, str] = {
        int: "a whole number",
        float: "a number",
        converters.boolean_converter: "true or false",
        converters.timedelta_converter: "a duration (days:hours:minutes:seconds)",
        converters.datetime_converter: "a date and time (YYYY-MM-DDTHH:MM:SS)",
        converters.date_converter: "a date (YYYY-MM-DD)",
        converters.class_converter: "an importable Python name (module.Name)",
        converters.regex_converter: "a regular expression",
        json.loads: "JSON",
    }
    try:
        if converter in words:
            return words[converter]
    except TypeError:  # unhashable
        pass
    name = getattr(converter, "__qualname__", None) or type(converter).__qualname__
    if "zoneinfo" in (getattr(converter, "__module__", "") or "") or name == "parse_zone":
        return "a time zone (an IANA name such as Europe/Berlin)"
    if name == "Decimal":
        return "a number"
    return f"a value {name} accepts"


def fix_conversion_errors(manager_module: Any) -> None:
    """A value that fails conversion names the option in full and what it should be:
    ``crontabber.class-Sum.count: 'lots' is not a whole number``. A boolean is
    one of :data:`crontabber.config.options.BOOLEAN_WORDS`, not False for any other word."""
    from configman.config_exceptions import CannotConvertError as cannot_convert
    from configman.converters import boolean_converter

    option_class = manager_module.Option
    set_value = option_class.set_value

    class Unconvertible(cannot_convert):  # type: ignore[misc, valid-type]
        def __init__(self, option: Any, value: str, reason: BaseException | None) -> None:
            self.option = option
            self.value = value
            self.detail = describe_unconvertible(option.from_string_converter, value, reason)
            super().__init__(f"{option.name}: {self.detail}")

    def checked_set_value(self: Any, val: Any = None) -> None:
        text = self.default if val is None else val
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(text, str):
            return set_value(self, val)
        if self.from_string_converter is boolean_converter:
            try:
                return set_value(self, parse_boolean(text))
            except ValueError:
                raise Unconvertible(self, text, None) from None
        try:
            return set_value(self, val)
        except Exception as exc:  # any converter's refusal, a KeyError or ImportError too
            raise Unconvertible(self, text, exc.__cause__ or exc) from None

    option_class.set_value = checked_set_value
    manager_class = manager_module.ConfigurationManager
    overlay_expand = manager_class._overlay_expand

    def _overlay_expand(self: Any) -> Any:
        try:
            return overlay_expand(self)
        except Unconvertible as exc:
            definitions = self.option_definitions
            key = next(
                (k for k in definitions.keys_breadth_first() if definitions[k] is exc.option),
                exc.option.name,
            )
            raise cannot_convert(f"{key}: {exc.detail}") from None

    manager_class._overlay_expand = _overlay_expand


def describe_unconvertible(converter: Any, value: str, reason: BaseException | None) -> str:
    said = f"{value!r} is not {expected_in_words(converter)}"
    detail = str(reason).strip().splitlines()[0] if reason and str(reason).strip() else ""
    # The converter's own words help when they are not configman's "fails to convert".
    if detail and "fails to convert" not in detail and not isinstance(reason, ValueError):
        said += f" ({detail})"
    return said


def fix_help_for_empty_secrets(manager_module: Any) -> None:
    """``--help`` shows an empty secret as empty, a set one still masked."""
    manager_class = manager_module.ConfigurationManager
    output_summary = manager_class.output_summary
    option_class = manager_module.Option

    def summary(self: Any, output_stream: Any = None) -> None:
        stream = sys.stdout if output_stream is None else output_stream
        empty_secrets = {
            name
            for name in self.option_definitions.keys_breadth_first()
            if isinstance(option := self.option_definitions[name], option_class)
            and (option.secret or "password" in name.lower())
            and option.value in ("", None)
        }
        text = io.StringIO()
        output_summary(self, output_stream=text)
        current = ""
        for line in text.getvalue().splitlines(keepends=True):
            heading = re.match(r"^  (?:-\S, )?--(\S+)$", line.rstrip("\n"))
            if heading:
                current = heading.group(1)
            elif current in empty_secrets and line.strip() == "(default: *********)":
                stream.write(line.replace("*********", ""))
                continue
            stream.write(line)

    manager_class.output_summary = summary


def fix_byte_order_mark(configobj_source_module: types.ModuleType) -> None:
    """Read ini files (and the files they ``+include``) as UTF-8, a byte-order mark allowed."""
    reader = configobj_source_module.ConfigObjWithIncludes
    include = reader._include_re

    def _expand_files(self: Any, file_name: str, original_path: str, indent: str = "") -> list:
        lines = []
        with open(file_name, encoding="utf-8-sig") as f:
            for line in f:
                match = include.match(line)
                if match:
                    included = os.path.join(original_path, match.group(2))
                    lines.extend(
                        _expand_files(
                            self, included, os.path.dirname(included), indent + match.group(1)
                        )
                    )
                else:
                    lines.append(indent + line.rstrip())
        return lines

    reader._expand_files = _expand_files


def load() -> types.ModuleType:
    """Apply every workaround (once) and return the ``configman`` module."""
    global _applied
    restore_collections_aliases()
    restore_getargspec()
    import configman
    import configman.config_manager
    import configman.dotdict
    import configman.value_sources.for_configobj
    import configman.value_sources.for_getopt

    if not _applied:
        fix_dotdict_acquisition(configman.dotdict)
        fix_declared_reference_targets(configman.config_manager)
        fix_boolean_switches(configman.value_sources.for_getopt)
        fix_conversion_errors(configman.config_manager)
        fix_help_for_empty_secrets(configman.config_manager)
        fix_byte_order_mark(configman.value_sources.for_configobj)
        _applied = True
    return configman
