"""The package's layout, read from its source with ``ast``: no import cycle, small
modules, configman at the edge only, and the original's dotted names kept."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(importlib.import_module("crontabber").__file__).parent
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str) -> set[str]:
    """The modules ``name`` imports, wherever the import stands (lazy ones too).

    ``from package import submodule`` depends on the submodule; the packages above
    a module are not counted (Python imports them first, whoever imports what).
    """
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:  # a submodule, else a name the module defines
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in MODULES else module)
    return found


def package_graph() -> dict[str, set[str]]:
    return {name: imported(name) & set(MODULES) - {name} for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    graph = package_graph()
    assert "crontabber.store.abc" in graph["crontabber.store.postgresql"]
    assert "crontabber.db.retry" in graph["crontabber.store.session"]


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(package_graph()) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_owns(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), name


def test_configman_is_imported_at_the_edge_only() -> None:
    importers = {
        name
        for name in MODULES
        if any(module.split(".")[0] in ("configman", "configobj") for module in imported(name))
    }
    assert importers == {"crontabber.config.configman_compat", "crontabber.config.configman_edge"}


# Classes that keep the original's dotted name as their own: what --admin.dump_conf
# writes for them, and what a run's error records.
KEPT_NAMES = [
    "crontabber.connection_factory.ConnectionFactory",
    "crontabber.transaction_executor.TransactionExecutor",
    "crontabber.transaction_executor.TransactionExecutorWithLimitedBackoff",
    "crontabber.transaction_executor.TransactionExecutorWithInfiniteBackoff",
    "crontabber.interrupts.Terminated",
    "crontabber.interrupts.MaxRuntimeExceeded",
]
ORIGINAL_NAMES = [
    "crontabber.base.BaseCronApp",
    "crontabber.mixins.using_postgres",
    "crontabber.mixins.with_postgres_transactions",
    "crontabber.mixins.with_subprocess",
    "crontabber.mixins.as_backfill_cron_app",
    *KEPT_NAMES,
]


@pytest.mark.parametrize("dotted", ORIGINAL_NAMES)
def test_the_original_dotted_names_still_import(dotted: str) -> None:
    module, _, name = dotted.rpartition(".")
    assert getattr(importlib.import_module(module), name) is not None


@pytest.mark.parametrize("dotted", KEPT_NAMES)
def test_classes_keep_the_names_dump_conf_and_the_log_write(dotted: str) -> None:
    module, _, name = dotted.rpartition(".")
    found = getattr(importlib.import_module(module), name)
    assert f"{found.__module__}.{found.__qualname__}" == dotted


def test_every_command_switch_names_a_function_of_the_commands_module() -> None:
    from crontabber.cli import commands
    from crontabber.config.options import COMMAND_SWITCHES

    missing = [
        switch.handler
        for switch in COMMAND_SWITCHES.values()
        if not callable(getattr(commands, switch.handler or "", None))
    ]
    assert missing == []
