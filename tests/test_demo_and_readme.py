"""The quickstart job and the README's Python example run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA_ROOT, REPO
from tests.test_identify import KNN_EXPECTED


def _demo(data: Path, out: Path) -> list[dict[str, object]]:
    subprocess.run(
        [sys.executable, "-m", "facelens.cli.main", "demo", "--data", str(data), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    records: list[dict[str, object]] = json.loads((out / "identify.json").read_text())
    return records


def test_demo_runs_anywhere_on_the_bundled_portrait(tmp_path: Path) -> None:
    records = _demo(tmp_path / "no-data-here", tmp_path / "out")
    assert len(records) == 1
    faces = records[0]["faces"]
    assert isinstance(faces, list) and [f["identity"] for f in faces] == ["Eileen Collins"]
    assert (tmp_path / "out" / "drawn" / "astronaut.jpg").is_file()


def test_demo_on_the_knn_example_names_everyone(knn_root: Path, tmp_path: Path) -> None:
    records = _demo(DATA_ROOT, tmp_path / "out")
    found = {
        Path(str(r["source"])).name: [
            f["identity"] for f in sorted(r["faces"], key=lambda f: f["box"][0])
        ]  # type: ignore[attr-defined]
        for r in records
    }
    assert found == KNN_EXPECTED


def test_readme_python_example_runs(knn_root: Path, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S)
    assert code is not None
    source = (
        code.group(1)
        .replace('"../shared/data/', f'"{DATA_ROOT}/')
        .replace("/tmp/facelens-readme.db", str(tmp_path / "g.db"))
    )
    result = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    lines = result.stdout.splitlines()
    # Biden, Obama, and a girl at the edge of the photo who was never enrolled.
    assert sorted(line.split()[0] for line in lines[:3]) == ["biden", "obama", "unknown"]
    assert lines[3].startswith("same person")
