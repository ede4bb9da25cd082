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
        from crontabber.config import configman_compat
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
        from crontabber.config import configman_compat
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
        "from crontabber.config.configman_compat import restore_collections_aliases\n"
        "restore_collections_aliases()\n" + LOOKUP
    )
    assert result.returncode != 0
    assert "ReferenceError" in result.stderr


def test_dotdict_acquisition_works() -> None:
    result = python(
        "from crontabber.config import configman_compat\nconfigman_compat.load()\n" + LOOKUP
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG"


def test_load_is_idempotent() -> None:
    from crontabber.config import configman_compat

    first = configman_compat.load()
    assert configman_compat.load() is first


REFERENCE_TO_DECLARED = """
from crontabber.config import configman_compat
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


CONFIGMAN = """
import sys
from crontabber import configman_compat
if PATCHED:
    configman = configman_compat.load()
else:
    configman_compat.restore_collections_aliases()
    configman_compat.restore_getargspec()
    import configman
def manager(root, argv, **kwargs):
    return configman.ConfigurationManager(
        [root], values_source_list=[configman.command_line], argv_source=argv, **kwargs
    )
"""

BOOLEAN_SWITCH = """
root = configman.Namespace()
root.namespace("ns").add_option("flag", default=True)
for argv in (["--ns.flag=False"], ["--ns.flag=no"], ["--ns.flag"], ["--ns.flag=0", "--ns.flag"]):
    print(manager(root, argv).get_config().ns.flag)
"""


def test_boolean_switch_value_needed() -> None:
    result = python("PATCHED = False\n" + CONFIGMAN + BOOLEAN_SWITCH)
    assert result.returncode != 0
    assert "option --ns.flag must not have an argument" in result.stderr


def test_boolean_switch_value_works() -> None:
    result = python("PATCHED = True\n" + CONFIGMAN + BOOLEAN_SWITCH)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "True", "True"]


def test_bare_boolean_switch_needed() -> None:
    # Unpatched, a bare switch flips the default: --ns.flag turns a True option off.
    result = python(
        "PATCHED = False\n" + CONFIGMAN + "root = configman.Namespace()\n"
        'root.namespace("ns").add_option("flag", default=True)\n'
        'print(manager(root, ["--ns.flag"]).get_config().ns.flag)\n'
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


CONVERSION = """
root = configman.Namespace()
ns = root.namespace("ns")
ns.add_option("count", default=3, from_string_converter=int)
ns.add_option("flag", default=False)
for values in ({"ns.count": "lots"}, {"ns.flag": "maybe"}):
    try:
        config = configman.ConfigurationManager(
            [root], values_source_list=[values], argv_source=[]
        ).get_config()
        print(config.ns.flag)
    except configman.config_exceptions.CannotConvertError as exc:
        print(exc)
"""


def test_conversion_error_message_needed() -> None:
    result = python("PATCHED = False\n" + CONFIGMAN + CONVERSION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "In 'count', '<class 'int'>' fails to convert 'lots'",
        "False",  # any unknown word is False
    ]


def test_conversion_error_message_works() -> None:
    result = python("PATCHED = True\n" + CONFIGMAN + CONVERSION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ns.count: 'lots' is not a whole number",
        "ns.flag: 'maybe' is not true or false",
    ]


EMPTY_SECRET = """
root = configman.Namespace()
root.add_option("token", default="", secret=True)
root.add_option("password", default="")
root.add_option("dsn", default="set", secret=True)
manager(root, ["--help"], app_name="x")
"""


def test_help_for_empty_secrets_needed() -> None:
    result = python("PATCHED = False\n" + CONFIGMAN + EMPTY_SECRET)
    assert "--token\n    (default: *********)" in result.stdout
    assert "--password\n    (default: *********)" in result.stdout


def test_help_for_empty_secrets_works() -> None:
    result = python("PATCHED = True\n" + CONFIGMAN + EMPTY_SECRET)
    assert result.returncode == 0, result.stderr
    assert "--token\n    (default: )" in result.stdout
    assert "--password\n    (default: )" in result.stdout
    assert "--dsn\n    (default: *********)" in result.stdout  # a set secret stays masked


BYTE_ORDER_MARK = """
import os, tempfile
path = os.path.join(tempfile.mkdtemp(), "x.ini")
with open(path, "w", encoding="utf-8-sig") as f:
    f.write("[ns]\\nword=caf\\u00e9\\n")
root = configman.Namespace()
root.namespace("ns").add_option("word", default="")
print(configman.ConfigurationManager(
    [root], values_source_list=[path], argv_source=[]).get_config().ns.word == "caf\\u00e9")
"""


def test_byte_order_mark_needed() -> None:
    result = python("PATCHED = False\n" + CONFIGMAN + BYTE_ORDER_MARK)
    assert result.returncode != 0
    assert "Invalid line" in result.stderr


def test_byte_order_mark_works() -> None:
    result = python("PATCHED = True\n" + CONFIGMAN + BYTE_ORDER_MARK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
