"""crontabber.record makes the frozen classes @dataclass(frozen=True) makes, for what
crontabber uses: each behaviour is checked against dataclasses' on the same class."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from crontabber import record as rec


def both(body: str) -> tuple[type, type]:
    """The class ``body`` made by dataclasses and by record."""
    made = []
    for decorate, field in (
        (dataclasses.dataclass(frozen=True), dataclasses.field),
        (rec.record, rec.field),
    ):
        namespace: dict[str, object] = {"field": field}
        exec(f"class Point:\n{body}", namespace)
        made.append(decorate(namespace["Point"]))
    return made[0], made[1]


BODY = """
    '''A point.'''
    x: int
    y: int = 2
    tags: tuple = field(default=())
    note: object = field(default=None, compare=False, repr=False)
    token: list = field(default_factory=list)

    @property
    def total(self):
        return self.x + self.y
"""


@pytest.mark.parametrize(
    "args",
    [(1,), (1, 5), (1, 5, ("a",)), (1, 5, (), "n", [3])],
)
def test_init_repr_eq_hash_as_dataclasses(args: tuple[object, ...]) -> None:
    dc, rc = both(BODY)
    a, b = dc(*args), rc(*args)
    assert repr(a) == repr(b)
    assert [getattr(a, f.name) for f in dataclasses.fields(a)] == [
        getattr(b, f.name) for f in rec.fields(b)
    ]
    assert b == rc(*args) and a == dc(*args)
    assert b.total == a.total
    assert rc.__match_args__ == dc.__match_args__
    assert b != a  # different classes are never equal, as in dataclasses


def test_compare_false_fields_are_left_out_of_eq_and_hash() -> None:
    dc, rc = both(BODY.replace("token: list = field(default_factory=list)", ""))
    assert rc(1, note="a") == rc(1, note="b")
    assert hash(rc(1, tags=("t",), note="a")) == hash(rc(1, tags=("t",), note="b"))
    assert hash(rc(1, 2, ("t",))) == hash(dc(1, 2, ("t",)))  # the same tuple of fields
    assert rc(1) != rc(2)


def test_an_unhashable_field_makes_the_record_unhashable_as_in_dataclasses() -> None:
    dc, rc = both(BODY)
    for made in (dc, rc):
        with pytest.raises(TypeError, match="unhashable"):
            hash(made(1))


def test_default_factory_makes_a_new_value_each_time() -> None:
    _, rc = both(BODY)
    first, second = rc(1), rc(1)
    assert first.token == [] and first.token is not second.token


def test_assignment_and_deletion_are_refused() -> None:
    _, rc = both(BODY)
    point = rc(1)
    with pytest.raises(rec.FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y
    assert point.x == 1


def test_replace_checks_as_init_does() -> None:
    dc, rc = both(BODY)
    point = rc(1, 5)
    moved = rec.replace(point, y=7)
    assert (moved.x, moved.y, point.y) == (1, 7, 5)
    assert repr(moved) == repr(dataclasses.replace(dc(1, 5), y=7))
    with pytest.raises(TypeError):
        rec.replace(point, z=1)


def test_missing_and_unknown_arguments_are_type_errors() -> None:
    _, rc = both(BODY)
    with pytest.raises(TypeError):
        rc()
    with pytest.raises(TypeError):
        rc(1, w=2)


def test_post_init_runs_after_the_fields_are_set() -> None:
    seen = []

    @rec.record
    class Checked:
        value: int

        def __post_init__(self) -> None:
            seen.append(self.value)
            if self.value < 0:
                raise ValueError("negative")

    assert Checked(3).value == 3 and seen == [3]
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)


def test_a_record_derived_from_a_record_has_the_bases_fields_first() -> None:
    @rec.record
    class Base:
        a: int
        b: int = 0

    @rec.record
    class Derived(Base):
        c: int = 1
        b: int = 5

    assert [f.name for f in rec.fields(Derived)] == ["a", "b", "c"]
    assert (
        repr(Derived(1))
        == "test_a_record_derived_from_a_record_has_the_bases_fields_first.<locals>.Derived(a=1, b=5, c=1)"
    )


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b'"):

        @rec.record
        class Wrong:
            a: int = 0
            b: int  # type: ignore[misc]


def test_records_pickle_and_compare_after_a_round_trip() -> None:
    from crontabber.store.records import Holder, JobState

    state = JobState("job", error_count=2, depends_on=("a",))
    assert pickle.loads(pickle.dumps(state)) == state
    holder = Holder("host", 1)
    assert pickle.loads(pickle.dumps(holder)) == holder
    assert len(holder.token) == 32 and Holder("host", 1).token != holder.token
