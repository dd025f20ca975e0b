"""Every ``FACELENS_*`` variable is read in ``facelens.settings``, typed, and documented once."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facelens
from facelens import settings
from facelens.apps.demo import default_data_root
from facelens.cluster.clusterer import default_index_path
from facelens.errors import ImageTooLargeError, SettingError
from facelens.gallery import resolve_gallery
from facelens.io.image import load_image
from facelens.models.runtime import default_threads
from facelens.models.user import models_file
from facelens.pipeline.faces import FacePipeline
from facelens.service.settings import ServiceSettings, resolve_service_dir

SOURCE = Path(facelens.__file__).parent
DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def _reads_environment(node: ast.AST) -> bool:
    """``os.environ.get(...)``, ``os.getenv(...)`` or ``os.environ[...]`` read."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        target = ast.unparse(node.func)
        return target in ("os.environ.get", "os.getenv", "environ.get", "getenv")
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return ast.unparse(node.value) in ("os.environ", "environ")
    return False


def test_only_the_settings_module_reads_the_environment() -> None:
    readers: list[str] = []
    named: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path == SOURCE / "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if _reads_environment(node):
                readers.append(f"{path.relative_to(SOURCE)}:{getattr(node, 'lineno', '?')}")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("FACELENS_")
                and node.value.replace("_", "").isalnum()
            ):
                named.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.value}")
    assert not readers, "environment read outside facelens.settings:\n" + "\n".join(readers)
    assert not named, "a variable named outside facelens.settings:\n" + "\n".join(named)


def test_the_checker_sees_a_read(tmp_path: Path) -> None:
    """The rule above could not fail if the parser missed reads: show it sees each kind."""
    code = "import os\na = os.environ.get('X')\nb = os.getenv('X')\nc = os.environ['X']\n"
    found = [n for n in ast.walk(ast.parse(code)) if _reads_environment(n)]
    assert len(found) == 3


def test_the_documented_table_is_the_settings_list() -> None:
    """docs/settings.md lists every setting with its meaning, default and unit, in order."""
    rows = [
        line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("| `")
    ]
    expected = [f"| `{s.name}` | {s.meaning} | {s.default} | {s.unit} |" for s in settings.SETTINGS]
    assert rows == expected
    assert len({s.name for s in settings.SETTINGS}) == len(settings.SETTINGS)


def test_every_setting_named_in_the_source_is_in_the_table() -> None:
    """A ``$FACELENS_X`` in a docstring or message names a listed setting."""
    import re

    listed = {s.name for s in settings.SETTINGS}
    mentioned: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        mentioned |= set(re.findall(r"FACELENS_[A-Z_]*[A-Z]", path.read_text(encoding="utf-8")))
    assert mentioned <= listed, mentioned - listed


def test_unset_variables_give_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for setting in settings.SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings.gallery() is None
    assert settings.gallery_key() is None and settings.gallery_key_file() is None
    assert settings.threads() is None and default_threads() >= 1
    assert settings.providers() is None
    assert settings.model_cache() == settings.DEFAULT_MODEL_CACHE == 16
    assert settings.max_pixels() == settings.DEFAULT_MAX_PIXELS == 64_000_000
    assert settings.postgres_scrub() == "full"
    assert settings.postgres_search() == "hnsw"
    assert settings.service_settings() is None
    assert ServiceSettings.from_env() == ServiceSettings()
    assert default_data_root() == Path("../shared/data")
    assert models_file().name == "models.json"


def test_the_modules_ask_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each variable reaches the module that uses it, typed, read when it is needed."""
    monkeypatch.setenv("FACELENS_GALLERY", str(tmp_path / "g.db"))
    monkeypatch.setenv("FACELENS_LIBRARY", str(tmp_path / "lib.db"))
    monkeypatch.setenv("FACELENS_MODELS_FILE", str(tmp_path / "m.json"))
    monkeypatch.setenv("FACELENS_SERVICE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FACELENS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FACELENS_THREADS", "0")
    monkeypatch.setenv("FACELENS_PROVIDERS", " CUDAExecutionProvider, ,CPUExecutionProvider ")
    monkeypatch.setenv("FACELENS_MODEL_CACHE", "3")
    monkeypatch.setenv("FACELENS_POSTGRES_SEARCH", " Codes ")
    monkeypatch.setenv("FACELENS_SERVICE_SETTINGS", ServiceSettings(max_pixels=7).to_json())
    assert resolve_gallery(None) == tmp_path / "g.db"
    assert default_index_path(None) == tmp_path / "lib.db"
    assert models_file() == tmp_path / "m.json"
    assert resolve_service_dir(None) == tmp_path / "state"
    assert default_data_root() == tmp_path / "data"
    assert default_threads() == 1  # below 1 counts as 1
    assert settings.providers() == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert settings.model_cache() == 3
    assert settings.postgres_search() == "codes"
    assert ServiceSettings.from_env().max_pixels == 7


@pytest.mark.parametrize(
    "variable", ["FACELENS_THREADS", "FACELENS_MODEL_CACHE", "FACELENS_MAX_PIXELS"]
)
def test_a_number_that_is_not_one_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    readers = {
        "FACELENS_THREADS": settings.threads,
        "FACELENS_MODEL_CACHE": settings.model_cache,
        "FACELENS_MAX_PIXELS": settings.max_pixels,
    }
    for text in ("abc", "2.5"):
        monkeypatch.setenv(variable, text)
        with pytest.raises(SettingError, match=f"{variable} is '{text}'; use a whole number"):
            readers[variable]()
    monkeypatch.setenv(variable, " 7 ")
    assert readers[variable]() == 7


def test_max_pixels_below_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in ("0", "-5"):
        monkeypatch.setenv("FACELENS_MAX_PIXELS", text)
        with pytest.raises(SettingError, match="at least 1"):
            settings.max_pixels()


def test_max_pixels_is_read_when_an_image_is_loaded(
    monkeypatch: pytest.MonkeyPatch, astronaut: np.ndarray
) -> None:
    """Not once at import: a changed variable holds for the next image and pipeline."""
    monkeypatch.setenv("FACELENS_MAX_PIXELS", str(512 * 512 - 1))
    with pytest.raises(ImageTooLargeError):
        load_image(astronaut)
    assert FacePipeline().max_pixels == 512 * 512 - 1
    monkeypatch.setenv("FACELENS_MAX_PIXELS", str(512 * 512))
    assert load_image(astronaut).width == 512


@pytest.mark.parametrize(
    ("variable", "text"),
    [("FACELENS_THREADS", "abc"), ("FACELENS_MODEL_CACHE", "x"), ("FACELENS_MAX_PIXELS", "-5")],
)
def test_a_bad_number_is_one_line_where_it_is_needed(
    variable: str, text: str, astronaut: np.ndarray, tmp_path: Path
) -> None:
    """Help still runs; a command that needs the setting names it in one line, exit 1."""
    environment = os.environ | {variable: text}
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    command = [sys.executable, "-m", "facelens.cli.main", "--gallery", str(tmp_path / "g.db")]
    helped = subprocess.run(
        [*command, "detect", "--help"], env=environment, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    failed = subprocess.run(
        [*command, "detect", str(photo)], env=environment, capture_output=True, text=True
    )
    assert failed.returncode == 1, failed.stdout
    assert "Traceback" not in failed.stderr and variable in failed.stderr
