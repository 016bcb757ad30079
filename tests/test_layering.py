"""Import boundaries, read statically from the source (AST: every ``import`` and ``from ... import`` anywhere in a
file, inside functions and ``if TYPE_CHECKING:`` blocks too, plus ``importlib.import_module("...")`` with a literal
name). Nothing is imported, so the test is fast and also sees imports that only run on some code paths.

1. The Cosmos core imports no NeMo, NeMo-Run or Lightning: it must run (and be tested) without them.
2. Imports point down the layer order below: a unit may import units of lower layers and itself, never a higher
   layer nor another unit of its own layer (so that units of a layer stay independent of each other).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nemo_cosmos_ar"

# Low to high. A "unit" is a subpackage or a top-level module of nemo_cosmos_ar.
LAYERS: list[tuple[str, ...]] = [
    ("checks", "compat", "cpu_shim"),  # foundations: no project imports
    ("tokenizer", "runtime", "download"),  # the grid rules and the tokenizer; process-group set-up; the Hub client
    ("video_io",),  # reading/writing clips (asks tokenizer.grid for the frame rule)
    ("model",),  # architecture config, presets, Megatron-Core model, loss, key mapping
    ("conversion", "data", "guardrails"),  # checkpoint formats; datasets; safety filters
    ("inference",),  # generation
    ("nemo_glue",),  # NeMo 2 model, data module, connectors, precision
    ("recipes",),  # NeMo-Run recipes and executors
    ("cli", "demo", "__main__"),  # entry points
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

CORE = ("model", "tokenizer", "data", "conversion", "inference", "video_io", "checks", "download", "guardrails")
FORBIDDEN = ("nemo", "nemo_run", "lightning", "pytorch_lightning")

# (importing module, imported module) -> why it is allowed. Keep this short; every entry is a design decision.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source`` (the source of ``module``)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from pkg import sub` may import the submodule pkg.sub
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names if a.name != "*"]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) ==
              "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):  # fmt: skip
            out.append((node.lineno, node.args[0].value))
    return out


def unit_of(module: str) -> str | None:
    """``nemo_cosmos_ar.model.loss`` -> ``model``; None outside the package (or for the package root itself)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "nemo_cosmos_ar" and len(parts) > 1 else None


def violations(module: str, imports: list[tuple[int, str]]) -> list[str]:
    unit = unit_of(module)
    found: dict[tuple[int, str], str] = {}  # one report per statement and offending unit/package
    for line, name in imports:
        if (module, name) in EXCEPTIONS:
            continue
        top = name.split(".")[0]
        if unit in CORE and top in FORBIDDEN:
            found.setdefault((line, top), f"{module}:{line} imports {name}: the Cosmos core ({unit}) must not import {top}")
        target = unit_of(name)
        if target is None or target == unit or unit is None:
            continue
        if target not in RANK:
            continue  # `from nemo_cosmos_ar import x` where x is a name, not a unit, is caught below if it is one
        if RANK[target] >= RANK[unit]:
            where = "a higher layer" if RANK[target] > RANK[unit] else "another unit of its own layer"
            found.setdefault((line, target), f"{module}:{line} imports {name}: {unit} (layer {RANK[unit]}) may not "
                             f"import {where} ({target}, layer {RANK[target]})")  # fmt: skip
    return list(found.values())


def _all_modules() -> list[tuple[str, Path]]:
    return [(module_name(p), p) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m, _ in _all_modules()} - {None}
    assert units - set(RANK) == set(), "add the new unit to LAYERS"
    assert set(CORE) <= set(RANK)


def test_core_imports_no_nemo_and_imports_point_down():
    found = []
    for module, path in _all_modules():
        found += violations(module, imports_of(path.read_text(), module, path.name == "__init__.py"))
    assert found == [], "\n".join(found)


def test_exceptions_are_still_needed():
    """An exception that no import uses any more is stale: remove it."""
    used = set()
    for module, path in _all_modules():
        for _, name in imports_of(path.read_text(), module, path.name == "__init__.py"):
            used.add((module, name))
    assert set(EXCEPTIONS) - used == set()


@pytest.mark.parametrize(
    "module, source, needle",
    [
        ("nemo_cosmos_ar.data.x", "def f():\n    import nemo.lightning as nl\n", "must not import nemo"),
        ("nemo_cosmos_ar.model.x", "def f():\n    from lightning.pytorch import Trainer\n", "must not import lightning"),
        ("nemo_cosmos_ar.video_io", "import nemo_run as run\n", "must not import nemo_run"),
        ("nemo_cosmos_ar.model.x", "from nemo_cosmos_ar.data.dataset import ClipTokenDataset\n", "a higher layer"),
        ("nemo_cosmos_ar.model.x", "from ..nemo_glue import model\n", "a higher layer"),
        ("nemo_cosmos_ar.data.x", "from nemo_cosmos_ar import conversion\n", "another unit of its own layer"),
        ("nemo_cosmos_ar.tokenizer.x", "import importlib\nimportlib.import_module('nemo_cosmos_ar.model.mcore')\n",
         "a higher layer"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(module, source, needle):
    found = violations(module, imports_of(source, module, False))
    assert len(found) == 1 and needle in found[0], found


def test_allowed_imports_pass_the_checker():
    ok = ("import torch\nfrom megatron.core import parallel_state\nfrom nemo_cosmos_ar.tokenizer import grid\n"
          "from . import loss\nfrom nemo_cosmos_ar.checks import check_int\n")  # fmt: skip
    assert violations("nemo_cosmos_ar.model.x", imports_of(ok, "nemo_cosmos_ar.model.x", False)) == []
    glue = "import nemo_run as run\nfrom nemo_cosmos_ar.model.presets import get_preset\n"
    assert violations("nemo_cosmos_ar.nemo_glue.x", imports_of(glue, "nemo_cosmos_ar.nemo_glue.x", False)) == []
