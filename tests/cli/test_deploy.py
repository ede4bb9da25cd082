"""The deployment files in deploy/, checked as far as this machine allows: the YAML
parses into what it says, systemd accepts the units, and the container's command and
health check, run directly, serve and answer."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..helpers.command import environment, run_crontabber
from ..helpers.missing import skip_or_fail
from ..helpers.waiting import wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_kubernetes_manifests_and_the_compose_file_parse() -> None:
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    cronjob = yaml.safe_load((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())
    assert (deployment["kind"], cronjob["kind"]) == ("Deployment", "CronJob")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--daemon" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert cronjob["spec"]["schedule"] == "* * * * *"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(compose["services"]) == {"postgres", "daemon-a", "daemon-b", "page"}
    assert "--serve" in compose["services"]["page"]["command"]


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        skip_or_fail("no systemd-analyze to verify the units with")
    command = Path(sys.executable).with_name("crontabber")
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/crontabber/bin/crontabber", str(command))
        text = re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.MULTILINE)
        text = re.sub(
            r"^WorkingDirectory=.*$", f"WorkingDirectory={tmp_path}", text, flags=re.MULTILINE
        )
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(path) for path in tmp_path.iterdir())
    checked = subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, check=False
    )
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr


def dockerfile_json(instruction: str) -> list[str]:
    """The JSON command of the Dockerfile's CMD, or of its HEALTHCHECK's CMD."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith(instruction + " ")]
    return json.loads(line[line.index("CMD [") + 4 :])


def test_the_containers_command_serves_and_its_health_check_answers(tmp_path: Path) -> None:
    assert run_crontabber("--init", "etc", cwd=tmp_path).status == 0
    config = tmp_path / "etc" / "crontabber.ini"
    config.write_text(config.read_text() + "[web]\n    auth_token=t0ken\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        arg.replace("/etc/crontabber/", f"{tmp_path}/etc/").replace("8080", str(port))
        for arg in dockerfile_json("CMD")
    ]
    command[0] = str(Path(sys.executable).with_name("crontabber"))
    health = [arg.replace("8080", str(port)) for arg in dockerfile_json("HEALTHCHECK")]
    health[0] = sys.executable
    daemon = subprocess.Popen(
        command, cwd=tmp_path, env=environment(), stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: subprocess.run(health, check=False, capture_output=True).returncode == 0,
            "the health check passes",
            timeout=30,
            process=daemon,
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr
    assert (tmp_path / "etc" / "crontabber.sqlite").exists()


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml"])
def test_the_files_say_how_to_use_them(name: str) -> None:
    assert (DEPLOY / name).read_text().startswith("# ")
