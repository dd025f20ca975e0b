"""Fuzzing the live service with schemathesis and every check it has, from the OpenAPI schema
the service serves.

``st run --checks all`` runs all four phases (examples, coverage, fuzzing, stateful)
against a real server with an admin key: status codes, content types, response schemas
and headers conform to the schema; requests the schema allows are accepted and those it
forbids refused; a 405 carries ``Allow``; authentication is never ignored; a deleted
resource is gone and a created one is there. ``tests/schemathesis_hooks.py`` makes the
uploads the schema declares (photos with a face, zips of them, a short video) and adds
one check: every error is ``{"error": {"code": ..., "message": ...}}``.
``tests/schemathesis.toml`` sizes the run: at least 2,500 requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB

pytestmark = pytest.mark.slow

MIN_REQUESTS = 2500
TESTS = Path(__file__).resolve().parent


def test_schemathesis_with_all_its_checks_finds_nothing(tmp_path: Path) -> None:
    gallery = tmp_path / "people.db"
    state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
    key = KeyStore(state).create("fuzzer", "admin")[1]
    state.close()
    report = tmp_path / "schemathesis.json"
    with ServerProcess(gallery, log_path=tmp_path / "server.log") as server:
        command = [
            *(sys.executable, "-m", "schemathesis.cli"),
            *("--config-file", str(TESTS / "schemathesis.toml")),
            *("run", f"{server.url}/openapi.json", "--checks", "all"),
            *("--header", f"X-API-Key: {key}", "--seed", "13", "--workers", "1"),
            *("--request-timeout", "120", "--no-shrink", "--no-color"),
            # drawing names from the large Unicode pattern is slow on a busy machine
            *("--suppress-health-check", "too_slow"),
            *("--report", "json", "--report-json-path", str(report)),
        ]
        environment = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
        }
        run = subprocess.run(
            command,
            env=environment,
            cwd=tmp_path,  # its cache folder goes there
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    output = run.stdout + run.stderr
    assert report.is_file(), output[-3000:]
    result = json.loads(report.read_text())
    print(f"\n{result['test_cases']} in {result['running_time']:.0f} s; phases {result['phases']}")
    assert run.returncode == 0 and not result["failures"] and not result["errors"], output[-8000:]
    assert result["test_cases"]["generated"] >= MIN_REQUESTS, result["test_cases"]
    assert result["operations"]["tested"] == result["operations"]["total"] >= 20
