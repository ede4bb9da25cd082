#!/usr/bin/env bash
# The long hammer: the fault-tolerance hammer test with more rounds and workers
# than CI runs (16 x 50). Needs PostgreSQL (CRONTABBER_TEST_DATABASE_URL).
#   bash benchmarks/hammer.sh [ROUNDS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CRONTABBER_HAMMER_ROUNDS="${1:-500}"
export CRONTABBER_HAMMER_WORKERS="${2:-16}"
exec python -m pytest -q -p no:cacheprovider tests/faults/test_hammer.py
