"""Fuzzing the live service with schemathesis, from the OpenAPI schema it serves.

At least 1,000 generated requests per run (valid and invalid by the schema:
random parameters, random bytes as uploads, wrong types), all with an admin
key so they reach the handlers. Every answer must be below 500, and every
error must be ``{"error": {"code": str, "message": str}}``.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB

pytestmark = pytest.mark.slow

MIN_REQUESTS = 1000
EXAMPLES_PER_OPERATION_AND_MODE = 30


def check_response(response: requests.Response, where: str) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, f"{where}: {body}"
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], where
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], where


def test_fuzzing_the_openapi_schema_finds_no_server_error_and_no_malformed_error(
    tmp_path: Path,
) -> None:
    gallery = tmp_path / "people.db"
    state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
    key = KeyStore(state).create("fuzzer", "admin")[1]
    state.close()
    statuses: Counter[int] = Counter()
    per_operation: Counter[str] = Counter()
    failures: list[str] = []
    with ServerProcess(gallery, log_path=tmp_path / "server.log") as server:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        session = requests.Session()
        headers = {"X-API-Key": key}

        def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, seeded: bool) -> None:
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
                derandomize=seeded,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case: schemathesis.Case) -> None:
                try:
                    response = case.call(session=session, headers=headers, timeout=60)
                except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
                    return  # the client library refused to send it: nothing reached us
                statuses[response.status_code] += 1
                per_operation[operation.label] += 1
                try:
                    check_response(response, f"{case.method} {case.formatted_path}")
                except (AssertionError, json.JSONDecodeError) as error:
                    failures.append(f"{error}\n{case.as_curl_command()}")

            with contextlib.suppress(Unsatisfiable):  # e.g. no invalid request for no parameters
                send()

        for round_number in range(5):
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz(operation, mode, seeded=round_number == 0)
            if sum(statuses.values()) >= MIN_REQUESTS:
                break
    total = sum(statuses.values())
    print(
        f"\n{total} requests over {len(per_operation)} operations; statuses {dict(sorted(statuses.items()))}"
    )
    assert not failures, "\n\n".join(failures[:5])
    assert total >= MIN_REQUESTS
    assert not [status for status in statuses if status >= 500]
