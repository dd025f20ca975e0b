"""Which names each facelens module exports: the ones other code uses.

A module's ``__all__`` is its surface: the names that other modules, the tests,
the benchmarks, the scripts, the entry points and the docs' examples import or
reach as attributes. Everything else it defines is internal to it.

    python scripts/exported_names.py           # list what is missing from each __all__
    python scripts/exported_names.py --write   # add the missing names (and __all__ itself)

``tests/test_exported_members.py`` checks the same rule (``missing_names``).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "src" / "facelens"
USERS = ("src", "tests", "benchmarks", "scripts")
TEXTS = ("README.md", "docs", "pyproject.toml")
_ENTRY = re.compile(r"\bfacelens((?:\.\w+)+):(\w+)")
_DOC_IMPORT = re.compile(r"^\s*from (facelens(?:\.\w+)*) import \(?([\w, ]+)\)?", re.MULTILINE)


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level: definitions and imports."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


def declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value
            assert isinstance(value, ast.List | ast.Tuple), "__all__ must be a literal list"
            return [str(ast.literal_eval(e)) for e in value.elts]
    return None


def used_names(known: set[str]) -> dict[str, set[str]]:
    """``module -> names`` that code outside the module reaches (imports, attributes,
    ``setattr``/``getattr`` with a literal name, entry points, the CLI's lazy commands)."""
    used: dict[str, set[str]] = defaultdict(set)
    for folder in USERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if ".venv" in path.parts:
                continue
            own = module_name(path) if path.is_relative_to(SOURCE) else None
            for module, name in _uses(ast.parse(path.read_text(encoding="utf-8")), known):
                if module != own:
                    used[module].add(name)
    for text in _texts():
        for module, name in _ENTRY.findall(text):
            used["facelens" + module].add(name)
        for module, names in _DOC_IMPORT.findall(text):
            for name in names.split(","):
                name = name.strip().split(" as ")[0]
                if name and f"{module}.{name}" not in known:
                    used[module].add(name)
    for module in known:  # the service mounts each route module's ``router`` in a loop
        if module.startswith("facelens.service.routes."):
            used[module].add("router")
    commands = ast.parse((SOURCE / "cli" / "main.py").read_text(encoding="utf-8"))
    for node in ast.walk(commands):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) == 2 and f"facelens.cli.{values[0]}" in known:
                used[f"facelens.cli.{values[0]}"].add(str(values[1]))
    return used


def _texts() -> list[str]:
    found: list[str] = []
    for name in TEXTS:
        path = REPO / name
        files = sorted(path.rglob("*.md")) if path.is_dir() else [path]
        found += [f.read_text(encoding="utf-8") for f in files if f.exists()]
    for folder in USERS:
        found += [p.read_text(encoding="utf-8") for p in sorted((REPO / folder).rglob("*.py"))]
    return found


def _uses(tree: ast.Module, known: set[str]) -> list[tuple[str, str]]:
    aliases: dict[str, str] = {}  # local name -> facelens module
    uses: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("facelens") or node.module not in known:
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    aliases[alias.asname or alias.name] = full
                else:
                    uses.append((node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _dotted(node.value)
            if chain is None:
                continue
            head, _, rest = chain.partition(".")
            module = aliases.get(head, head if head == "facelens" else "")
            module = ".".join(filter(None, [module, rest]))
            if module in known:
                uses.append((module, node.attr))
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            func = _dotted(node.func) or ""
            target, name = node.args[0], node.args[1]
            if (
                func.split(".")[-1] in ("setattr", "getattr", "delattr")
                and isinstance(target, ast.Name)
                and target.id in aliases
                and isinstance(name, ast.Constant)
                and isinstance(name.value, str)
            ):
                uses.append((aliases[target.id], name.value))
    return uses


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def missing_names() -> dict[str, list[str]]:
    """``module -> names`` others use that its ``__all__`` lacks (``__all__`` itself
    missing: every such name, possibly none, keyed with ``"__all__"`` first)."""
    found = modules()
    used = used_names(set(found))
    missing: dict[str, list[str]] = {}
    for module, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not tree.body and path.name == "__init__.py":
            continue  # an empty package front door exports nothing
        defined = top_level_names(tree)
        declared = declared_all(tree)
        wanted = sorted(n for n in used.get(module, set()) if n in defined and _public(n))
        if declared is None:
            missing[module] = ["__all__", *wanted]
        elif lacking := [n for n in wanted if n not in declared]:
            missing[module] = lacking
    return missing


def _public(name: str) -> bool:
    """Not a private name (a test may reach one; it stays private); dunders like
    ``__version__`` are public, ``__all__`` is the list itself."""
    return name != "__all__" and (not name.startswith("_") or name.endswith("__"))


def write(missing: dict[str, list[str]]) -> None:
    found = modules()
    for module, names in missing.items():
        path = found[module]
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        if names and names[0] == "__all__":
            text = _insert_all(text, tree, names[1:])
        else:
            declared = declared_all(tree) or []
            text = _replace_all(text, tree, sorted({*declared, *names}))
        path.write_text(text, encoding="utf-8")


def _literal(names: list[str]) -> str:
    one_line = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]"
    if not names:
        return "__all__: list[str] = []"
    if len(one_line) <= 100:
        return one_line
    return "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]"


def _insert_all(text: str, tree: ast.Module, names: list[str]) -> str:
    """``__all__`` after the imports, before the first other statement."""
    lines = text.splitlines(keepends=True)
    body = tree.body
    start = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        start = 1
    anchor: ast.stmt | None = None
    for node in body[start:]:
        if isinstance(node, ast.Import | ast.ImportFrom) or (
            isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        ):
            continue
        anchor = node
        break
    if anchor is None:  # only imports: at the end
        return text.rstrip("\n") + "\n\n" + _literal(names) + "\n"
    first = min([anchor.lineno, *(d.lineno for d in getattr(anchor, "decorator_list", []))]) - 1
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    blanks = 0
    while first - blanks > 0 and not lines[first - blanks - 1].strip():
        blanks += 1
    block = _literal(names) + "\n" + "\n" * max(blanks, 1)
    return "".join(lines[:first]) + block + "".join(lines[first:])


def _replace_all(text: str, tree: ast.Module, names: list[str]) -> str:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and "__all__" in ast.unparse(node):
            lines = text.splitlines(keepends=True)
            start, end = node.lineno - 1, node.end_lineno or node.lineno
            return "".join(lines[:start]) + _literal(names) + "\n" + "".join(lines[end:])
    raise AssertionError("no __all__ to replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="add what is missing")
    args = parser.parse_args()
    missing = missing_names()
    if args.write:
        write(missing)
    for module, names in sorted(missing.items()):
        print(f"{module}: {', '.join(names) or '(nothing)'}")
    return 0 if args.write or not missing else 1


if __name__ == "__main__":
    sys.exit(main())
