"""``/api/analyze`` in process: the real app, models and keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from facelens.models.attributes import EXPRESSIONS
from facelens.service.app import create_app
from facelens.service.settings import ServiceSettings
from tests.test_service import assert_error, auth, jpeg, make_keys


def test_analyze_endpoint(astronaut: np.ndarray, tmp_path: Path) -> None:
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"))
    keys = make_keys(settings)
    photo = {"image": ("astronaut.jpg", jpeg(astronaut), "image/jpeg")}
    with TestClient(create_app(settings)) as client:
        assert_error(client.post("/api/analyze", files=photo), 401, "unauthenticated")
        response = client.post("/api/analyze", files=photo, headers=auth(keys["query"]))
        assert response.status_code == 200, response.text
        [face] = response.json()["faces"]
        found = face["attributes"]
        assert found["expression"] == "happy"
        assert list(found["expression_scores"]) == list(EXPRESSIONS)
        assert abs(sum(found["expression_scores"].values()) - 1.0) < 1e-3
        assert found["age"] is not None and found["gender"] in ("female", "male")

        light = client.post(
            "/api/analyze?age_gender=false", files=photo, headers=auth(keys["query"])
        )
        assert light.status_code == 200 and light.json()["faces"][0]["attributes"]["age"] is None
        garbage = {"image": ("x.jpg", b"not an image", "image/jpeg")}
        bad = client.post("/api/analyze", files=garbage, headers=auth(keys["query"]))
        assert 400 <= bad.status_code < 500
