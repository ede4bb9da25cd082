"""The test suite's own layout, read with ``ast``: test modules in the five folders by
what they need, shared code in tests/helpers, fixtures in conftest.py, and no test
module importing another (or a conftest)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = ("unit", "store", "cli", "faults", "web")
TEST_MODULES = sorted(TESTS.rglob("test_*.py"))
HELPERS = sorted((TESTS / "helpers").rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)


def imported_modules(source: str, name: str) -> set[str]:
    """The dotted names the module ``name`` imports from, relative imports resolved,
    with each name imported ``from`` a package as a module of its own too."""
    package = name.rpartition(".")[0].split(".")
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imported_tests(path: Path) -> set[str]:
    """The test modules and conftests ``path`` imports."""
    return {
        name
        for name in imported_modules(path.read_text(encoding="utf-8"), module_name(path))
        if name.split(".")[0] == "tests"
        and any(part.startswith("test_") or part == "conftest" for part in name.split("."))
    }


def test_the_test_modules_are_found() -> None:
    assert len(TEST_MODULES) > 30
    assert TESTS / "unit" / "test_tests_layout.py" in TEST_MODULES


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda path: str(path.relative_to(TESTS)))
def test_every_test_module_is_in_a_folder_by_what_it_needs(path: Path) -> None:
    assert path.parent.parent == TESTS and path.parent.name in FOLDERS, path


@pytest.mark.parametrize("folder", [*FOLDERS, "helpers"])
def test_every_folder_is_a_package(folder: str) -> None:
    assert (TESTS / folder / "__init__.py").is_file()


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_folder_has_tests(folder: str) -> None:
    """.ci/run runs tests/faults apart from the rest: neither may select nothing."""
    assert list((TESTS / folder).glob("test_*.py")), folder


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda path: str(path.relative_to(TESTS)))
def test_no_test_module_imports_another_or_a_conftest(path: Path) -> None:
    others = imported_tests(path)
    assert others == set(), f"{module_name(path)} imports {sorted(others)}: use tests/helpers"


def test_the_import_check_sees_relative_and_absolute_imports() -> None:
    source = (
        "from . import test_admin\nfrom ..store.test_lease import NOW\n"
        "from ..conftest import DEFAULT_PG_URL\nimport tests.web.test_browser\n"
        "from ..helpers.command import write_config\n"
    )
    found = imported_modules(source, "tests.cli.test_probe")
    assert {
        "tests.cli.test_admin",
        "tests.store.test_lease",
        "tests.conftest",
        "tests.web.test_browser",
        "tests.helpers.command",
    } <= found


@pytest.mark.parametrize("path", HELPERS, ids=lambda path: str(path.relative_to(TESTS)))
def test_helpers_hold_no_tests_and_no_fixtures(path: Path) -> None:
    assert not path.name.startswith("test_"), path
    tree = ast.parse(path.read_text(encoding="utf-8"))
    decorators = [
        ast.unparse(decorator)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
    ]
    assert not [d for d in decorators if "fixture" in d], f"{path}: fixtures go in conftest.py"
    assert imported_tests(path) == set(), path
