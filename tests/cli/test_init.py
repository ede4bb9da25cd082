"""``crontabber --init DIR``: a starter configuration and job a fresh install runs."""

from __future__ import annotations

from pathlib import Path

from ..helpers.command import run_crontabber


def test_init_writes_a_starter_that_runs(tmp_path: Path) -> None:
    made = run_crontabber("--init", "starter", cwd=tmp_path)
    assert made.status == 0, made.stderr
    assert made.stdout == (
        "wrote starter/crontabber.ini and starter/starter_jobs.py; "
        "run the jobs with: crontabber --admin.conf=starter/crontabber.ini\n"
    )
    ran = run_crontabber("--admin.conf=starter/crontabber.ini", cwd=tmp_path)
    assert ran.status == 0, ran.stderr
    assert "hello from crontabber" in ran.stdout
    checked = run_crontabber("--admin.conf=starter/crontabber.ini", "--configtest", cwd=tmp_path)
    assert checked.stdout == "configuration OK: 2 jobs\n"
    assert (tmp_path / "starter" / "crontabber.sqlite").exists()


def test_init_never_overwrites_and_needs_a_directory(tmp_path: Path) -> None:
    assert run_crontabber("--init=starter", cwd=tmp_path).status == 0
    (tmp_path / "starter" / "starter_jobs.py").write_text("# mine\n")
    again = run_crontabber("--init=starter", cwd=tmp_path)
    assert (again.status, again.stdout) == (1, "")
    assert again.stderr == (
        "crontabber: starter/crontabber.ini exists: not overwritten (choose another directory)\n"
    )
    assert (tmp_path / "starter" / "starter_jobs.py").read_text() == "# mine\n"
    bare = run_crontabber("--init", cwd=tmp_path)
    assert (bare.status, bare.stderr) == (1, "crontabber: --init needs a directory: --init=DIR\n")
