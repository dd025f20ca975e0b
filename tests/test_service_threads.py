"""How many inference threads each worker process of ``facelens serve`` uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from facelens.cli.main import cli
from facelens.service.settings import SETTINGS_ENV, ServiceSettings, worker_threads


def test_the_cores_are_shared_out_among_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELENS_THREADS", raising=False)
    assert worker_threads(1, cores=2) == 2
    assert worker_threads(2, cores=2) == 1
    assert worker_threads(4, cores=2) == 1
    assert worker_threads(2, cores=8) == 4
    monkeypatch.setenv("FACELENS_THREADS", "3")
    assert worker_threads(2, cores=2) == 3


@pytest.mark.parametrize(("options", "expected"), [([], 1), (["--threads", "2"], 2)])
def test_serve_with_two_workers_gives_each_its_share_of_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], expected: int
) -> None:
    monkeypatch.delenv("FACELENS_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    started: dict[str, Any] = {}

    def run(app: str, **kwargs: Any) -> None:  # uvicorn's, not ours: no server is started
        started.update(kwargs, settings=ServiceSettings.from_json(os.environ[SETTINGS_ENV]))

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv(SETTINGS_ENV, "")
    gallery = str(tmp_path / "people.db")
    result = CliRunner().invoke(
        cli, ["--gallery", gallery, "serve", "--workers", "2", "--port", "0", *options]
    )
    assert result.exit_code == 0, result.output
    assert started["workers"] == 2
    assert started["settings"].threads == expected
