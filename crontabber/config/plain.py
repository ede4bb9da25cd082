"""A tick's configuration read without configman, when nothing in it needs configman.

Importing configman and letting it build, overlay and check its option tree costs
a tick from crontab more than everything else crontabber does. Most ticks need
none of it: the command line names the config file, and it, the file and the
environment set only crontabber's own options (:mod:`crontabber.config.options`), and no
job has options of its own. For those, :func:`read` reads them itself (the
environment's ``logging.level`` or ``crontabber__database_url`` over the file, and
``--logging.level=INFO`` on the command line over both, as with configman) and
returns what configman would have produced, as plain values. For anything else it returns None and
configman reads the configuration as before, so that every message, warning and
refusal is configman's (through :mod:`crontabber.config.settings`).

The ini subset read here is the one crontabber's own files use: ``[section]``
headers nested with brackets, ``key = value`` lines, a value quoted or in
triple quotes over several lines, and ``#`` comments. Whatever else configobj
would read differently (lists of values, interpolation, ``+include`` lines,
duplicate names) sends the file to configman. A test holds the subset to
configobj's reading, and one holds the settings to configman's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from crontabber.config.options import COMMAND_OPTIONS, OPTIONS, comma_joined, parse_boolean

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

_SECTION = re.compile(r"^(\[+)\s*([A-Za-z0-9_-]+)\s*(\]+)\s*(?:#.*)?$")
_KEY = re.compile(r"^([A-Za-z0-9_-]+)\s*=\s*(.*)$")
_INCLUDE = re.compile(r"^\s*\+include\s")  # configman's +include FILE line
_QUOTED = re.compile(r"""^(?:'([^']*)'|"([^"]*)")\s*(?:#.*)?$""")
_CONVERTERS = {"int": int, "float": float, "bool": parse_boolean, "text": comma_joined}
# The names configman looks for at the top of its tree (the environment included).
_TOP_NAMES = frozenset(
    {option.name.split(".", 1)[0] for option in OPTIONS}
    | {command.name for command in COMMAND_OPTIONS}
    | {"admin", "help", "secrets"}
)


class Values(dict):
    """Options by name, a namespace a nested ``Values``, read as ``values.crontabber.jobs``
    too: the shape :func:`crontabber.config.settings.settings_from` reads configman's in."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_ini(text: str) -> dict[str, Any] | None:
    """The sections and values of an ini file in the subset read here, or None when the
    file steps outside it (configobj then reads it, and says what is wrong)."""
    root: dict[str, Any] = {}
    stack = [root]  # stack[depth]: the section open at that depth
    # Lines as configman reads them: broken at newlines only (str.splitlines breaks at
    # form feeds and other separators too), each stripped at its end.
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    if any(_INCLUDE.match(line) for line in lines):  # expanded by configman, even in a value
        return None
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        section = _SECTION.match(line)
        if section:
            depth = len(section[1])
            if depth != len(section[3]) or depth > len(stack) or section[2] in stack[depth - 1]:
                return None
            stack[depth:] = [{}]
            stack[depth - 1][section[2]] = stack[depth]
            continue
        keyword = _KEY.match(line)
        if not keyword or keyword[1] in stack[-1]:
            return None
        text_value = keyword[2]
        if text_value[:3] in ("'''", '"""'):
            value, index = _triple_quoted(text_value, lines, index)
        elif "," in text_value:  # a list to configobj, or maybe one (even in a comment)
            value = None
        elif text_value[:1] in ("'", '"'):
            quoted = _QUOTED.match(text_value)
            value = None if quoted is None else quoted[1] if quoted[1] is not None else quoted[2]
        else:
            value = text_value.split("#", 1)[0].strip()
            if any(mark in value for mark in "'\""):  # quotes configobj reads its own way
                value = None
        if value is None or "%(" in value:  # %(name)s: configobj's interpolation
            return None
        stack[-1][keyword[1]] = value
    return root


def _triple_quoted(text: str, lines: list[str], index: int) -> tuple[str | None, int]:
    """A value in triple quotes from ``text`` on (and the lines after it, from
    ``index``), as configobj reads it, and the index of the line after it."""
    quote, rest = text[:3], text[3:]
    if quote in rest:
        value, _, after = rest.partition(quote)
        return (value if _only_comment(after) else None), index
    parts = [rest]
    while index < len(lines):
        line = lines[index]
        index += 1
        if quote in line:
            before, _, after = line.partition(quote)
            parts.append(before)
            return ("\n".join(parts) if _only_comment(after) else None), index
        parts.append(line)
    return None, index


def _only_comment(text: str) -> bool:
    text = text.strip()
    return not text or text.startswith("#")


def defaults() -> Values:
    """Every option at its default, commands included, nested by namespace."""
    values = Values()
    for option in OPTIONS:
        *path, name = option.name.split(".")
        namespace = values
        for part in path:
            namespace = namespace.setdefault(part, Values())
        namespace[name] = option.default
    for command in COMMAND_OPTIONS:
        values[command.name] = command.default
    return values


def apply_file(values: Values, ini: Mapping[str, Any]) -> bool:
    """Set the options the ini file gives, converted; False when the file holds a name
    that is not one of crontabber's options or a value that does not convert."""
    kinds = {option.name: option.kind for option in OPTIONS}

    def walk(section: Mapping[str, Any], target: Values, prefix: str) -> bool:
        for key, value in section.items():
            name = prefix + key
            if isinstance(value, dict):
                inner = target.get(key)
                if not isinstance(inner, Values) or not walk(value, inner, name + "."):
                    return False
                continue
            kind = kinds.get(name)
            if kind is None:
                return False
            try:
                target[key] = _CONVERTERS[kind](value) if kind in _CONVERTERS else value
            except ValueError:
                return False
        return True

    return walk(ini, values, "")


def command_line(argv: Sequence[str], default: str) -> tuple[str, dict[str, str]] | None:
    """The ini file and the options ``argv`` gives, when it gives only the file
    (``--admin.conf=FILE``, or nothing and ``default`` exists) and crontabber's own
    options as ``--name=value`` (``--name`` alone for a boolean); None for any other
    command line (short forms, abbreviations, commands, admin options...)."""
    kinds = {option.name: option.kind for option in OPTIONS}
    path, given = None, {}
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        name, has_value, value = argument.removeprefix("--").partition("=")
        if argument == "--admin.conf" and arguments and path is None:
            path = arguments.pop(0)
        elif argument.startswith("--admin.conf=") and path is None:
            path = value
        elif argument.startswith("--") and name in kinds and name not in given:
            if not has_value and kinds[name] != "bool":
                return None  # its value after a space: configman's
            given[name] = value if has_value else "True"
        else:
            return None
    if path is None:
        path = default
    if not path.endswith("ini") or not os.path.isfile(path):
        return None
    return path, given


def environment_options(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The options the environment sets, as configman reads them (``__`` in a name that
    is not all capitals stands for ``.``: ``crontabber__database_url``), or None when it
    names anything configman would take that is not one of crontabber's options (an
    admin option, a command, a job's option)."""
    known = {option.name for option in OPTIONS}
    given = {}
    for name, value in environ.items():
        key = name.replace("__", ".") if "__" in name and name != name.upper() else name
        if key.split(".", 1)[0] not in _TOP_NAMES:
            continue
        if key not in known:
            return None
        given[key] = value
    return given


def read(
    argv: Sequence[str], default_conf: str, environ: Mapping[str, str] = os.environ
) -> tuple[Values, str] | None:
    """The option values and the config file's path, as configman would read them for
    ``argv``, or None when configman must read them itself."""
    from_command_line = command_line(argv, default_conf)
    from_environment = environment_options(environ)
    if from_command_line is None or from_environment is None:
        return None
    path, given = from_command_line
    try:
        with open(path, encoding="utf-8-sig") as file:
            ini = parse_ini(file.read())
    except (OSError, UnicodeDecodeError):
        return None
    values = defaults()
    if ini is None or not apply_file(values, ini):
        return None
    # The environment overrides the file, and the command line both, as with configman.
    for name, text in [*from_environment.items(), *given.items()]:
        if not apply_file(values, _nested(name, text)):
            return None
    return values, path


def _nested(name: str, value: str) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ``a.b``."""
    *path, last = name.split(".")
    nested: dict[str, Any] = {last: value}
    for part in reversed(path):
        nested = {part: nested}
    return nested
