"""The import graph of ingest/ runs one way, down the pipeline's layers
(docs/architecture.md#layers): no package imports one above it, so no circle
closes through the package that everything imports (errors, model)."""

from __future__ import annotations

import ast
from pathlib import Path

INGEST = Path(__file__).resolve().parent.parent / "ingest"

#: Lowest first; a unit may import its own layer's units and those below.
LAYERS = [
    {"errors", "model", "resources", "groups"},
    {"types"},
    {"readers", "archive"},
    {"surfaces"},
    {"vmlinux"},
    {"modules"},
    {"join"},
    {"queries"},
    {"db"},
    {"changes", "pipeline"},
    {"bpf", "catalog", "origins"},
    {"web", "publish"},
    {"cli", "__main__", "__init__"},
]
RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}


def _unit(module: str) -> str:
    """The top-level unit of ingest a dotted module belongs to ("ingest.db.store" -> "db")."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str, str]]:
    """(file, importing unit, imported unit) for every import of ingest inside ingest/."""
    found = []
    for path in sorted(INGEST.rglob("*.py")):
        module = ".".join(path.relative_to(INGEST.parent).with_suffix("").parts).removesuffix(".__init__")
        unit = _unit(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ingest":
                targets = [a.name for a in node.names] if node.module == "ingest" else [_unit(node.module)]
            elif isinstance(node, ast.Import):
                targets = [_unit(a.name) for a in node.names if a.name.startswith("ingest.")]
            else:
                continue
            found += [(str(path.relative_to(INGEST.parent)), unit, target) for target in targets]
    return found


def test_every_unit_has_a_layer():
    units = {
        p.stem if p.is_file() else p.name
        for p in INGEST.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert units - set(RANK) == set(), "add the new package or module to LAYERS"


def test_no_import_runs_up_the_layers():
    upward = [
        f"{file}: {unit} imports {target}"
        for file, unit, target in _imports()
        if target in RANK and RANK[target] > RANK[unit]
    ]
    assert upward == []


def test_the_check_sees_imports():
    """The scan finds the imports it judges (a scan that found none would pass anything)."""
    pairs = {(unit, target) for _, unit, target in _imports()}
    assert ("pipeline", "db") in pairs and ("db", "queries") in pairs and ("cli", "pipeline") in pairs
