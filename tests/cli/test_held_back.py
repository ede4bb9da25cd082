"""A job its dependency holds back is "held back" in --list-jobs, as on the page."""

from __future__ import annotations

import json
from pathlib import Path

from crontabber import web

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module
from ..helpers.wsgi import call


def test_list_jobs_and_the_page_agree_on_a_held_back_job(tmp_path: Path) -> None:
    write_job_module(
        tmp_path,
        "heldjobs",
        Job("Broken", "broken", run='raise RuntimeError("no")'),
        Job("Waiting", "waiting", depends_on="broken"),
    )
    config = write_config(tmp_path, "heldjobs.Broken|1h\nheldjobs.Waiting|1h")
    assert run_crontabber(f"--admin.conf={config}", cwd=tmp_path).status == 0
    listed = run_crontabber(f"--admin.conf={config}", "--list-jobs", "--json", cwd=tmp_path)
    states = {job["app_name"]: job["state"] for job in map(json.loads, listed.stdout.splitlines())}
    assert states == {"broken": "failing", "waiting": "held back"}
    text = run_crontabber(f"--admin.conf={config}", "--list-jobs", cwd=tmp_path).stdout
    assert "state:        held back (dependency 'broken' failed last time)" in text
    from crontabber.config.configman_edge import load_settings

    settings = load_settings([f"--admin.conf={config}"], plain=True)
    app = web.create_app(f"sqlite:///{tmp_path / 'crontabber.sqlite'}", settings.specs)
    try:
        page = call(app, "/api/jobs").json()
    finally:
        app.close()
    assert {job["app_name"]: job["status"] for job in page["jobs"]}["waiting"] == "held back"  # type: ignore[index]
