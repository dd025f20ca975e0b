#!/usr/bin/env bash
# Set up, then run the whole test suite: lint, type check, tests.
# Real-photo tests read $FACELENS_DATA (default ../shared/data) and skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest -ra --durations=25 "$@"  # the slowest tests, to keep CI under 30 min
