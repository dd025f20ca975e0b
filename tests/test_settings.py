"""Every ``FACELENS_*`` variable is read in ``facelens.settings``, typed, and documented once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import facelens
from facelens import settings
from facelens.apps.demo import default_data_root
from facelens.cluster.clusterer import default_index_path
from facelens.gallery import resolve_gallery
from facelens.models.runtime import default_threads
from facelens.models.user import models_file
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
