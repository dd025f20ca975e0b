"""The pipeline reads one way: no package imports a package on a higher floor.

Floors, from the bottom: the shared conventions (types, errors, vectors,
settings, io),
then models, pipeline, gallery, index, match, then the features built on them
(video, privacy, cluster, then analysis, ingest and evaluation), apps, the
Python API, and the surfaces (CLI, service). A package may import its own
floor's or lower floors' packages, never a higher one; packages on one floor
do not import each other unless listed in ``SAME_FLOOR``. Lazy imports inside
functions count too: a lazy import only hides a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import facelens

SOURCE = Path(facelens.__file__).parent

FLOORS: list[set[str]] = [
    {"types", "errors", "vectors", "version", "settings", "io"},
    {"models"},
    {"pipeline"},
    {"gallery"},
    {"index"},
    {"match"},
    {"video", "privacy", "cluster"},
    {"analysis", "ingest", "evaluation"},
    {"apps"},
    {"api"},
    {"cli", "service"},
]
SAME_FLOOR = {("types", "errors"), ("errors", "types"), ("io", "errors"), ("io", "types")}
SAME_FLOOR |= {("io", "settings"), ("settings", "errors")}
SAME_FLOOR |= {("vectors", "types"), ("cli", "service")}


def floor_of(package: str) -> int:
    for number, packages in enumerate(FLOORS):
        if package in packages:
            return number
    raise AssertionError(f"facelens.{package} has no floor in tests/test_layers.py: add it")


def package_of(path: Path) -> str:
    """The top-level part of facelens a file belongs to (``models``, ``api``, ...)."""
    relative = path.relative_to(SOURCE).with_suffix("")
    return relative.parts[0]


def imported_modules(path: Path) -> set[str]:
    """Every ``facelens.*`` module a file imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module in ("facelens", "facelens.models"):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name.startswith("facelens."))
    return found


def imported_packages(path: Path) -> set[str]:
    """Every ``facelens.<package>`` a file imports, at any depth of its code."""
    return {name.split(".")[1] for name in imported_modules(path)}


def test_every_import_goes_down_a_floor_or_stays_in_its_package() -> None:
    upward: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == SOURCE:
            continue  # the package's front door re-exports the public names
        mine = package_of(path)
        for other in imported_packages(path) - {mine}:
            if floor_of(other) > floor_of(mine) or (
                floor_of(other) == floor_of(mine) and (mine, other) not in SAME_FLOOR
            ):
                upward.append(f"{path.relative_to(SOURCE)} imports facelens.{other}")
    assert not upward, "imports against the flow:\n" + "\n".join(upward)


def test_the_model_families_never_import_the_registry() -> None:
    """``spec`` <- families <- ``registry``: the registry is the only module that knows them all."""
    models = SOURCE / "models"
    for path in models.rglob("*.py"):
        if path.name == "registry.py":
            continue
        imports = imported_modules(path)
        assert "facelens.models.registry" not in imports, f"{path.relative_to(SOURCE)} imports it"


def test_the_checker_finds_an_upward_import(tmp_path: Path) -> None:
    """The rule above could not fail if the parser missed imports: show it sees a lazy one."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from facelens.api import FaceLens\n    return FaceLens\n")
    assert imported_packages(module) == {"api"}
