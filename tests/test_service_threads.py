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


def test_the_cores_are_shared_out_among_the_analyses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELENS_THREADS", raising=False)
    assert worker_threads(1, 2, cores=2) == 1
    assert worker_threads(2, 2, cores=2) == 1
    assert worker_threads(1, 1, cores=2) == 2
    assert worker_threads(1, 2, cores=8) == 4
    assert worker_threads(2, 2, cores=8) == 2
    monkeypatch.setenv("FACELENS_THREADS", "3")
    assert worker_threads(2, 2, cores=2) == 3


@pytest.mark.parametrize(
    ("options", "cores", "expected"),
    [
        (["--workers", "2"], 2, 1),
        (["--workers", "1"], 2, 1),
        (["--workers", "1"], 8, 4),
        (["--workers", "2", "--threads", "2"], 2, 2),
        (["--workers", "1", "--analysis-slots", "1"], 2, 2),
    ],
)
def test_serve_gives_each_analysis_its_share_of_the_cores(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    cores: int,
    expected: int,
) -> None:
    monkeypatch.delenv("FACELENS_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    started: dict[str, Any] = {}

    def run(app: str, **kwargs: Any) -> None:  # uvicorn's, not ours: no server is started
        started.update(kwargs, settings=ServiceSettings.from_json(os.environ[SETTINGS_ENV]))

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv(SETTINGS_ENV, "")
    gallery = str(tmp_path / "people.db")
    result = CliRunner().invoke(cli, ["--gallery", gallery, "serve", "--port", "0", *options])
    assert result.exit_code == 0, result.output
    assert started["workers"] == int(options[1])
    assert started["settings"].threads == expected
    slots = options[options.index("--analysis-slots") + 1] if "--analysis-slots" in options else 2
    assert started["settings"].analysis_slots == int(slots)
