"""One worker of the hammer test: runs the crontabber command once per round.

Usage: python hammer_worker.py CONFIG DIRECTORY WORKER_ID FIRST_ROUND ROUNDS
Each round waits for DIRECTORY/go-N, runs crontabber in this process (as the
command does) and writes DIRECTORY/done-N-WORKER_ID holding its exit status.
A job may end this process (an injected crash); the test then starts another.
"""

import os
import sys
import time
from pathlib import Path

import crontabber.cli
import crontabber.config.configman_edge
import crontabber.run.runner
import crontabber.store.abc  # imported before the rounds, not during them

config, directory, worker, first, rounds = sys.argv[1:6]
directory = Path(directory)
for number in range(int(first), int(rounds)):
    deadline = time.monotonic() + 120
    while not (directory / f"go-{number}").exists():
        if time.monotonic() > deadline:
            sys.exit("hammer_worker: no start file")
        time.sleep(0.002)
    os.environ["ROUND"] = str(number)
    status = crontabber.cli.main([f"--admin.conf={config}", "--logging.level=ERROR"])
    (directory / f"done-{number}-{worker}").write_text(str(status))
