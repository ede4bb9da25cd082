"""Frozen records for the modules a tick imports, without the ``dataclasses`` module.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis`` and
``tokenize``) and compiles six methods for each frozen class: for the twenty
records a tick uses, that is a fifth of what a tick from crontab costs.
``@record`` makes the same frozen classes for a fraction of it: one compiled
``__init__`` per class, the other methods shared.

What it makes is what ``@dataclass(frozen=True)`` makes, for the features
crontabber uses: fields from the class's annotations in order (a record's
bases' fields first), defaults and :func:`field` (``default``,
``default_factory``, ``compare``, ``repr``), ``__post_init__``, ``__repr__``,
``__eq__`` and ``__hash__`` over the compared fields, ``__match_args__``, and
assignment refused with :class:`FrozenInstanceError`. :func:`replace` is
``dataclasses.replace``.

It is the one way crontabber defines its records, in the modules a tick
imports and in the others alike (the CLI, the status page, migrations), so
that a record reads the same everywhere. ``collections.namedtuple`` stays only
where a tuple is the contract (``inspect.getargspec``'s ``ArgSpec``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R")

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a record."""


class Field:
    """A field declared with :func:`field`."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: Any, default_factory: Any, compare: bool, repr: bool) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr


def field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    compare: bool = True,
    repr: bool = True,
) -> Any:
    """A field with a default, a factory of defaults, or left out of ``==`` or ``repr``."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("a field takes a default or a default_factory, not both")
    return Field(default, default_factory, compare, repr)


def fields(cls_or_record: Any) -> tuple[Field, ...]:
    """The fields of a record class or record, in order."""
    return cls_or_record.__record_fields__


def replace(obj: R, **changes: Any) -> R:
    """A copy of the record ``obj`` with ``changes`` made, checked as ``__init__`` checks."""
    values = {f.name: getattr(obj, f.name) for f in obj.__record_fields__}  # type: ignore[attr-defined]
    values.update(changes)
    return type(obj)(**values)


def record(cls: type) -> type:
    """Make ``cls`` a frozen record of its annotated fields (see the module's docstring)."""
    own: list[Field] = []
    for name, annotation in vars(cls).get("__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        declared = value if isinstance(value, Field) else Field(value, _MISSING, True, True)
        declared.name = name
        own.append(declared)
        if isinstance(value, Field):
            if value.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, value.default)
    inherited = [f for base in cls.__mro__[-1:0:-1] for f in getattr(base, "__record_fields__", ())]
    by_name = {f.name: f for f in inherited}
    by_name.update((f.name, f) for f in own)
    all_fields = tuple(by_name.values())
    cls.__record_fields__ = all_fields  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(f.name for f in all_fields)  # type: ignore[attr-defined]
    cls.__init__ = _make_init(cls, all_fields)  # type: ignore[misc]
    cls.__repr__ = _repr  # type: ignore[method-assign]
    cls.__eq__ = _eq  # type: ignore[method-assign]
    cls.__hash__ = _hash  # type: ignore[method-assign]
    cls.__setattr__ = _setattr  # type: ignore[method-assign]
    cls.__delattr__ = _delattr  # type: ignore[method-assign]
    cls.__record_compared__ = tuple(f.name for f in all_fields if f.compare)  # type: ignore[attr-defined]
    cls.__record_shown__ = tuple(f.name for f in all_fields if f.repr)  # type: ignore[attr-defined]
    return cls


def _make_init(cls: type, all_fields: tuple[Field, ...]) -> Any:
    """One compiled ``__init__`` taking the fields in order, as dataclasses writes it."""
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": _MISSING}
    parameters, body = [], []
    seen_default = False
    for f in all_fields:
        if f.default_factory is not _MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            parameters.append(f"{f.name}=_MISSING")
            body.append(f"    if {f.name} is _MISSING: {f.name} = _factory_{f.name}()")
            seen_default = True
        elif f.default is not _MISSING:
            namespace[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            parameters.append(f.name)
        body.append(f"    _set(self, {f.name!r}, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(parameters)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_shown__)
    return f"{type(self).__qualname__}({shown})"


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__record_compared__)


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
