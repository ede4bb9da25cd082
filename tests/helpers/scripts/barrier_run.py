"""Run the crontabber command once a start file appears.

Used by the exactly-once tests: every process imports everything first, then
announces it is ready with a file START_FILE.ready-PID, then waits for the same
start file, so they all claim at the same instant.
Usage: python barrier_run.py START_FILE [crontabber arguments...]
"""

import os
import sys
import time

import crontabber.cli
import crontabber.config.configman_edge
import crontabber.run.runner
import crontabber.store.abc  # imported before the start, not after

start_file, arguments = sys.argv[1], sys.argv[2:]
open(f"{start_file}.ready-{os.getpid()}", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(start_file):
    if time.monotonic() > deadline:
        sys.exit("barrier_run: no start file")
    time.sleep(0.001)
sys.exit(crontabber.cli.main(arguments))
