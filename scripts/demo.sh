#!/usr/bin/env bash
# Quickstart: set up, then enroll the people of a folder-per-person set and identify a folder of photos.
# Uses ../shared/data/face_recognition_knn when present (or $FACELENS_DATA), else a bundled public-domain portrait.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/facelens demo "$@"
