"""The run output: what a job writes while it runs, kept up to a cap.

A capture of file descriptors 1 and 2 runs in a fresh Python (warnings are errors there
too), where pytest's own capture of those descriptors is not in the way; it prints a JSON
object as its last line. Captures of log records only run here.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from crontabber.resources.processes import run_process
from crontabber.run.output import RunOutput, record_output


def run_child(code: str, *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run ``code`` in a fresh Python and return the JSON of its last line, and the run."""
    process = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.splitlines()[-1]), process


def test_prints_os_system_and_child_processes_are_kept_and_still_reach_the_console() -> None:
    result, process = run_child("""
        import json, os, subprocess, sys
        from crontabber.run.output import RunOutput
        try:
            with RunOutput(limit_bytes=64 * 1024, fds=True) as output:
                print("from print")
                print("to sys.stderr", file=sys.stderr)
                os.system("echo x; echo y >&2")
                subprocess.run(["sh", "-c", "echo from child; echo child err >&2"], check=True)
                raise ValueError("the job failed")
        except ValueError:
            pass
        print(json.dumps({"text": output.text()}))
    """)
    # two pipes: a line written in two pieces (print, when unbuffered) may be split by another
    written = ["from print", "to sys.stderr", "x", "y", "from child", "child err"]
    assert all(line in result["text"] for line in written)
    assert len(result["text"]) == sum(len(line) + 1 for line in written)  # each kept once
    assert sorted(process.stdout.splitlines()[:-1]) == ["from child", "from print", "x"]
    assert sorted(process.stderr.splitlines()) == ["child err", "to sys.stderr", "y"]


def test_info_records_are_kept_while_each_handler_shows_what_it_showed_before() -> None:
    result, process = run_child("""
        import json, logging, sys
        from crontabber.run.output import RunOutput
        def handler(level, name):
            handler = logging.StreamHandler(sys.stderr)
            handler.setLevel(level)
            handler.setFormatter(logging.Formatter(name + " %(levelname)s %(message)s"))
            return handler
        # WARNING at the root; one handler at NOTSET, one at WARNING, one at DEBUG
        handlers = [handler(logging.NOTSET, "notset"), handler(logging.WARNING, "warning")]
        handlers.append(handler(logging.DEBUG, "debug"))
        logging.basicConfig(level=logging.WARNING, handlers=handlers)
        logging.getLogger("chatty").setLevel(logging.DEBUG)  # a level of its own
        job = logging.getLogger("job")
        with RunOutput(fds=True) as output:
            job.info("kept, not shown")
            job.debug("neither kept nor shown")
            job.warning("kept once and shown")
            logging.getLogger("chatty").debug("shown as before, not kept")
            try:
                1 / 0
            except ZeroDivisionError:
                job.exception("failed")
        root = logging.getLogger()
        print(json.dumps({
            "text": output.text(),
            "level": root.level,
            "handlers": len(root.handlers),
            "on_stderr": all(handler.stream is sys.stderr for handler in root.handlers),
            "filters": sum(len(handler.filters) for handler in root.handlers),
        }))
    """)
    assert result["text"].splitlines()[:4] == [
        "INFO job: kept, not shown",
        "WARNING job: kept once and shown",
        "ERROR job: failed",
        "Traceback (most recent call last):",
    ]
    assert result["text"].endswith("ZeroDivisionError: division by zero\n")
    assert result["text"].count("kept once and shown") == 1  # as a record, not as stderr too
    assert "neither" not in result["text"] and "chatty" not in result["text"]
    assert process.stderr.splitlines()[:5] == [
        "notset WARNING kept once and shown",
        "warning WARNING kept once and shown",
        "debug WARNING kept once and shown",
        "notset DEBUG shown as before, not kept",
        "debug DEBUG shown as before, not kept",
    ]
    assert "kept, not shown" not in process.stderr
    assert result | {"text": ""} == {
        "text": "",
        "level": logging.WARNING,
        "handlers": 3,
        "on_stderr": True,
        "filters": 0,
    }


def test_a_record_that_finds_no_handler_still_reaches_the_console_once() -> None:
    result, process = run_child("""
        import json, logging
        from crontabber.run.output import RunOutput
        with RunOutput(fds=True) as output:
            logging.getLogger("job").warning("no handler configured")
            logging.getLogger("job").info("quiet")
        print(json.dumps({"text": output.text(), "handlers": len(logging.getLogger().handlers)}))
    """)
    assert result == {
        "text": "WARNING job: no handler configured\nINFO job: quiet\n",
        "handlers": 0,
    }
    assert process.stderr == "no handler configured\n"  # what Python's last resort prints


def test_the_cap_keeps_the_head_and_the_tail_and_says_how_much_was_left_out() -> None:
    with RunOutput(limit_bytes=20) as output:
        for number in range(100):
            record_output(f"{number:03}")  # 4 bytes, the newline added
    assert output.text() == "000\n001\n00" + "\n[... 380 bytes left out ...]\n" + "7\n098\n099\n"


def test_a_capture_of_descriptors_is_capped_too() -> None:
    result, _ = run_child("""
        import json, os
        from crontabber.run.output import RunOutput
        with RunOutput(limit_bytes=1000, fds=True) as output:
            for _ in range(100):
                os.write(1, b"x" * 10_000)
            os.write(1, b"the end\\n")
        print(json.dumps({"text": output.text()}))
    """)
    left_out = 1_000_008 - 1000
    tail = "x" * 492 + "the end\n"
    assert result["text"] == "x" * 500 + f"\n[... {left_out} bytes left out ...]\n" + tail


def test_memory_stays_bounded_however_much_is_written() -> None:
    chunk = "y" * 1023
    tracemalloc.start()
    try:
        with RunOutput(limit_bytes=64 * 1024) as output:
            for _ in range(20_000):  # 20 MiB
                record_output(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    assert len(output.text()) < 64 * 1024 + 100


def test_a_limit_of_zero_keeps_nothing() -> None:
    with RunOutput(limit_bytes=0) as output:
        record_output("gone")
        logging.getLogger("job").warning("gone too")
    assert output.text() == ""
    with pytest.raises(ValueError):
        RunOutput(limit_bytes=-1)


def test_a_character_cut_at_the_boundary_is_replaced_not_raised() -> None:
    with RunOutput(limit_bytes=11) as output:
        record_output("é" * 20)  # 41 bytes: 5 in the head, 6 in the tail
    assert output.text() == "éé\ufffd" + "\n[... 30 bytes left out ...]\n" + "\ufffdéé\n"
    with RunOutput(limit_bytes=10) as whole:
        record_output("aéé")  # fits: the head ends inside the last character
    assert whole.text() == "aéé\n"


def test_a_background_child_holding_the_pipe_does_not_make_leaving_wait(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    try:
        result, process = run_child(
            """
            import json, os, subprocess, sys, time
            from crontabber.run.output import RunOutput
            go, done = sys.argv[1], sys.argv[1] + ".done"
            waits = f"while [ ! -e {go} ]; do sleep 0.05; done; echo late; touch {done}"
            with RunOutput(fds=True) as output:
                subprocess.run(["sh", "-c", f"({waits}) & echo started"], check=True)
                leaving = time.monotonic()
            seconds = time.monotonic() - leaving
            open(go, "w").close()  # the child writes 'late' after the capture
            while not os.path.exists(done):
                time.sleep(0.05)
            with RunOutput(fds=True):  # its end takes what the pipes hold: 'late' is shown
                pass
            print(json.dumps({"text": output.text(), "seconds": seconds}))
            """,
            str(flag),
        )
    finally:
        flag.touch()
    assert result["text"] == "started\n"
    assert result["seconds"] < 1  # the child, which holds the pipe still, is not waited for
    assert process.stdout.splitlines()[:-1] == ["started", "late"]  # still shown, not kept


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_descriptors_are_restored_and_none_is_left_open() -> None:
    result, _ = run_child("""
        import json, os, subprocess, sys, threading
        from crontabber.run.output import RunOutput
        def state():
            files = [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)]
            return sorted(os.listdir("/proc/self/fd")), files, threading.active_count()
        with RunOutput(fds=True):  # the first capture starts the process's tee
            pass
        before = state()
        for _ in range(3):
            try:
                with RunOutput(fds=True) as output:
                    sys.stdout.write("out\\n")  # one write: the order of two pipes is loose
                    subprocess.run(["sh", "-c", "echo child; echo err >&2"], check=True)
                    raise ValueError
            except ValueError:
                pass
        print(json.dumps({"same": state() == before, "text": output.text()}))
    """)
    assert result["same"]
    assert sorted(result["text"].splitlines()) == ["child", "err", "out"]


def test_one_capture_of_descriptors_at_a_time_and_the_innermost_gets_recorded_output() -> None:
    result, _ = run_child("""
        import json
        from crontabber.run.output import RunOutput, record_output
        with RunOutput(fds=True) as outer:
            try:
                with RunOutput(fds=True):
                    pass
            except RuntimeError as error:
                refused = str(error)
            with RunOutput() as inner:
                record_output("to the inner one")
            record_output("to the outer one")
        print(json.dumps({"refused": refused, "outer": outer.text(), "inner": inner.text()}))
    """)
    assert "already capturing" in result["refused"]
    assert result["outer"] == "to the outer one\n"
    assert result["inner"] == "to the inner one\n"


def test_what_a_command_run_through_the_mixin_wrote_is_kept() -> None:
    long_command = "echo " + "a" * 300
    with RunOutput() as output:
        assert run_process(None, "echo out; echo err >&2") == (0, "out", "err")
        assert run_process(None, ["sh", "-c", "exit 3"]) == (3, "", "")
        assert run_process(None, long_command)[0] == 0
    lines = output.text().splitlines()
    assert lines[:4] == ["$ echo out; echo err >&2", "out", "err", "$ sh -c exit 3"]
    assert lines[4] == "$ " + long_command[:197] + "..."
    assert lines[5] == "a" * 300


def test_without_descriptors_only_the_threads_own_records_are_kept(
    capfd: pytest.CaptureFixture[str],
) -> None:
    root_level = logging.getLogger().level

    def elsewhere() -> None:
        logging.getLogger("other").warning("another thread's")

    with RunOutput(fds=False) as output:
        print("printed")
        os.write(1, b"written\n")
        logging.getLogger("lib").warning("kept")
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert output.text() == "WARNING lib: kept\n"
    assert "printed\nwritten\n" in capfd.readouterr().out  # shown, not kept
    assert logging.getLogger().level == root_level


def test_record_output_without_a_capture_does_nothing() -> None:
    record_output("nobody listens")
