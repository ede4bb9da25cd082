"""Each configman workaround: shown needed on this Python, and shown to work.

Each check runs in a fresh interpreter, so "needed" sees configman unpatched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="the workarounds target 3.11+")


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_collections_aliases_needed() -> None:
    result = python("import configman")
    assert result.returncode != 0
    assert "module 'collections' has no attribute" in result.stderr


def test_collections_aliases_work() -> None:
    result = python(
        """
        from crontabber import configman_compat
        configman = configman_compat.load()
        ns = configman.Namespace()
        ns.add_option("x", default=1)
        print(configman.ConfigurationManager([ns], values_source_list=[], argv_source=[]).get_config().x)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_getargspec_needed() -> None:
    # Only the collections aliases, patched by hand: importing crontabber would
    # restore getargspec as well.
    result = python(
        """
        import collections, collections.abc
        for name in ("Mapping", "MutableMapping", "Sequence", "MutableSet", "Callable"):
            setattr(collections, name, getattr(collections.abc, name))
        import argparse
        from configman.def_sources.for_argparse import get_args_and_values
        parser = argparse.ArgumentParser()
        get_args_and_values(parser, parser.add_argument("--x"))
        """
    )
    assert result.returncode != 0
    assert "getargspec" in result.stderr


def test_getargspec_works() -> None:
    result = python(
        """
        from crontabber import configman_compat
        configman_compat.load()
        import argparse
        from configman.def_sources.for_argparse import get_args_and_values
        parser = argparse.ArgumentParser()
        args, kwargs = get_args_and_values(parser, parser.add_argument("--x", default=3))
        print(kwargs["default"])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


LOOKUP = """
from configman.dotdict import DotDictWithAcquisition
d = DotDictWithAcquisition()
d.level = "DEBUG"
print(d["a.b.level"])
"""


def test_dotdict_acquisition_needed() -> None:
    result = python(
        "from crontabber.configman_compat import restore_collections_aliases\n"
        "restore_collections_aliases()\n" + LOOKUP
    )
    assert result.returncode != 0
    assert "ReferenceError" in result.stderr


def test_dotdict_acquisition_works() -> None:
    result = python("from crontabber import configman_compat\nconfigman_compat.load()\n" + LOOKUP)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG"


def test_load_is_idempotent() -> None:
    from crontabber import configman_compat

    first = configman_compat.load()
    assert configman_compat.load() is first


REFERENCE_TO_DECLARED = """
from crontabber import configman_compat
configman = configman_compat.load() if PATCHED else None
if not PATCHED:
    configman_compat.restore_collections_aliases()
    configman_compat.restore_getargspec()
    import configman
root = configman.Namespace()
root.namespace("resource").namespace("postgresql").add_option("host", default="db.example.com")
root.namespace("job").add_option("host", default="", reference_value_from="resource.postgresql")
manager = configman.ConfigurationManager([root], values_source_list=[], argv_source=[])
print(manager.get_config().job.host)
"""


def test_reference_to_a_declared_option_needed() -> None:
    result = python("PATCHED = False\n" + REFERENCE_TO_DECLARED)
    assert result.returncode != 0
    assert "KeyError: 'resource.postgresql.host'" in result.stderr


def test_reference_to_a_declared_option_works() -> None:
    result = python("PATCHED = True\n" + REFERENCE_TO_DECLARED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "db.example.com"
