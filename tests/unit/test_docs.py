"""The documentation site's sources: the reference is generated from the code and
current, every page is in the site's navigation, and the README's links lead to them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def generated_reference() -> str:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference()


def test_the_reference_is_generated_and_current() -> None:
    assert (DOCS / "reference.md").read_text() == generated_reference(), (
        "docs/reference.md is out of date: run python docs/gen_reference.py"
    )


def test_the_reference_names_every_option_and_switch() -> None:
    from crontabber.config.options import COMMAND_OPTIONS, OPTIONS

    text = (DOCS / "reference.md").read_text()
    for option in OPTIONS:
        assert f"`{option.name}`" in text
    for switch in COMMAND_OPTIONS:
        assert f"`--{switch.name}`" in text
    assert "`crontabber_job_paused`" in text and "### `crontabber_notification`" in text


def test_every_page_is_in_the_navigation_and_the_readme_links_resolve() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {path.name for path in DOCS.glob("*.md")} - {"exit_statuses.md"}
    assert {page for page in pages if f": {page}" not in nav} == set()
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), target
