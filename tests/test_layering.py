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
    ("checks", "compat", "cpu_shim", "x264"),  # foundations: no project imports (x264: video_io's parallel encode)
    ("tokenizer", "runtime", "download"),  # the grid rules and the tokenizer; process-group set-up; the Hub client
    ("video_io",),  # reading/writing clips (asks tokenizer.grid for the frame rule)
    ("model",),  # architecture config, presets, Megatron-Core model, loss, key mapping
    ("conversion", "data", "guardrails", "diffusion_decoder"),  # checkpoints; datasets; safety filters; 7B decoder
    ("inference",),  # generation
    ("nemo_glue",),  # NeMo 2 model, data module, connectors, precision
    ("recipes",),  # NeMo-Run recipes and executors
    ("cli", "demo", "__main__"),  # entry points
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

CORE = (
    "model",
    "tokenizer",
    "data",
    "conversion",
    "inference",
    "video_io",
    "x264",
    "checks",
    "download",
    "guardrails",
    "diffusion_decoder",
)
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
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
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
            found.setdefault(
                (line, top), f"{module}:{line} imports {name}: the Cosmos core ({unit}) must not import {top}"
            )
        target = unit_of(name)
        if target is None or target == unit or unit is None:
            continue
        if target not in RANK:
            continue  # `from nemo_cosmos_ar import x` where x is a name, not a unit, is caught below if it is one
        if RANK[target] >= RANK[unit]:
            where = "a higher layer" if RANK[target] > RANK[unit] else "another unit of its own layer"
            found.setdefault(
                (line, target),
                f"{module}:{line} imports {name}: {unit} (layer {RANK[unit]}) may not "
                f"import {where} ({target}, layer {RANK[target]})",
            )
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
        (
            "nemo_cosmos_ar.model.x",
            "def f():\n    from lightning.pytorch import Trainer\n",
            "must not import lightning",
        ),
        ("nemo_cosmos_ar.video_io", "import nemo_run as run\n", "must not import nemo_run"),
        ("nemo_cosmos_ar.model.x", "from nemo_cosmos_ar.data.dataset import ClipTokenDataset\n", "a higher layer"),
        ("nemo_cosmos_ar.model.x", "from ..nemo_glue import model\n", "a higher layer"),
        ("nemo_cosmos_ar.data.x", "from nemo_cosmos_ar import conversion\n", "another unit of its own layer"),
        (
            "nemo_cosmos_ar.tokenizer.x",
            "import importlib\nimportlib.import_module('nemo_cosmos_ar.model.mcore')\n",
            "a higher layer",
        ),
    ],
)
def test_the_checker_catches_each_kind_of_violation(module, source, needle):
    found = violations(module, imports_of(source, module, False))
    assert len(found) == 1 and needle in found[0], found


def test_allowed_imports_pass_the_checker():
    ok = (
        "import torch\nfrom megatron.core import parallel_state\nfrom nemo_cosmos_ar.tokenizer import grid\n"
        "from . import loss\nfrom nemo_cosmos_ar.checks import check_int\n"
    )
    assert violations("nemo_cosmos_ar.model.x", imports_of(ok, "nemo_cosmos_ar.model.x", False)) == []
    glue = "import nemo_run as run\nfrom nemo_cosmos_ar.model.presets import get_preset\n"
    assert violations("nemo_cosmos_ar.nemo_glue.x", imports_of(glue, "nemo_cosmos_ar.nemo_glue.x", False)) == []


def _module_level_imports(source: str, module: str, is_package: bool) -> list[str]:
    """Project modules imported when ``module`` is imported: top-level statements only (not inside functions)."""
    tree = ast.parse(source)
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    wrapper = ast.Module(body=top, type_ignores=[])
    return [name for _, name in imports_of(ast.unparse(wrapper), module, is_package)]


def test_no_import_cycle_between_project_modules():
    """Module-level imports between project modules form no cycle (registration through an import cycle was how the
    connectors used to reach ``CosmosARModel``)."""
    modules = {m: p for m, p in _all_modules()}
    graph = {
        m: {n for n in _module_level_imports(p.read_text(), m, p.name == "__init__.py") if n in modules and n != m}
        for m, p in modules.items()
    }
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n) :] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package importing its own submodule and that submodule importing a sibling by the package path is no cycle
    cycles = [c for c in cycles if not all(x == c[0] or x.startswith(c[0] + ".") for x in c)]
    assert cycles == []


def test_importing_the_glue_patches_nothing_and_registers_the_connectors():
    """``import nemo_cosmos_ar.nemo_glue.model`` (what loading a checkpoint's io.json does) registers the importers
    and exporters on ``CosmosARModel`` and leaves torch.cuda and NumPy alone (a fresh process: conftest applies the
    shims to this one)."""
    import json
    import subprocess
    import sys

    from conftest import REPO, child_env

    code = (
        "import json, numpy, torch\n"
        "before = (torch.cuda.current_device, hasattr(numpy, 'product'))\n"
        "from nemo_cosmos_ar.nemo_glue.model import CosmosARModel\n"
        "from nemo_cosmos_ar import cpu_shim\n"
        "print(json.dumps({'same': (torch.cuda.current_device, hasattr(numpy, 'product')) == before,\n"
        "                  'applied': any(v not in (False, None) for v in cpu_shim._APPLIED.values()),\n"
        "                  'importers': sorted(k.removeprefix(str(CosmosARModel)) for k in CosmosARModel._IMPORTERS\n"
        "                                      if k.startswith(str(CosmosARModel))),\n"
        "                  'exporters': sorted(k.removeprefix(str(CosmosARModel)) for k in CosmosARModel._EXPORTERS\n"
        "                                      if k.startswith(str(CosmosARModel)))}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=child_env(), cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {
        "same": True,
        "applied": False,
        "importers": ["hf", "pt"],
        "exporters": ["hf", "pt", "pt_tp2", "pt_tp4", "pt_tp8"],
    }
