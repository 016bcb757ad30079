"""NeMo checkpoints written before issue 19 (the sized config classes became thin aliases of model/presets.py) still
load, with exactly the configuration they were written with.

``fixtures/nemo_context_3c124d7/`` holds the ``context/io.json`` and ``context/model.yaml`` of three tiny checkpoints
written by commit 3c124d7 (``make_contexts.py`` there): a ``cosmos-ar convert import`` of the tiny preset (io.json
names ``CosmosARConfigTiny`` and only the precision arguments), an import of a custom architecture (the full
``CosmosARNeMoConfig`` with every field in io.json) and a 2-step run of the tiny CPU recipe (trainer, callbacks,
precision plugin and optimizer too). The weights are large (16 MB), and their format did not change; only the
context is frozen.

"Still loads" means: (1) every class io.json names is importable at its recorded path; (2) NeMo rebuilds the
config and the model from io.json; (3) every field of the rebuilt config equals what the old code wrote into
model.yaml (which NeMo dumps with all defaults resolved), so the architecture, grid, precision and loss settings are
the old ones; (4) the plain architecture (``cosmos_config``) is the old one; (5) the weights of such a checkpoint read
back bit-exactly (``test_old_context_reads_weights_bit_exactly``, one NeMo process).
"""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, child_env

FIXTURES = Path(__file__).parent / "fixtures" / "nemo_context_3c124d7"
CASES = ("import_tiny", "import_custom", "train_tiny")


def _old_config(case: str) -> dict:
    return yaml.safe_load((FIXTURES / case / "model.yaml").read_text())["config"]


def _same(old, new) -> bool:
    """model.yaml value (old) vs the rebuilt config's attribute (new)."""
    if isinstance(old, dict) and "_target_" in old:  # a class, function or dtype; or (`_call_`) an object of one
        obj = type(new) if old.get("_call_") else new
        name = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        return old["_target_"] in (name, str(obj))  # dtypes have no __qualname__: str(torch.bfloat16)
    if isinstance(new, tuple):
        new = list(new)
    return old == new


@pytest.fixture(scope="module")
def nemo_io():
    from nemo.lightning import io

    return io


def _init_values(conf) -> dict:
    """What the config class's ``__init__`` receives for a fiddle config: its recorded arguments, else the class's
    field defaults (NeMo's model.yaml records exactly these, before ``__post_init__`` derives further fields)."""
    values = {}
    for f in dataclasses.fields(conf.__fn_or_cls__):
        if f.name in conf.__arguments__:
            values[f.name] = conf.__arguments__[f.name]
        elif f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return values


@pytest.mark.parametrize("case", CASES)
def test_old_io_json_rebuilds_the_old_config(nemo_io, case):
    old = _old_config(case)
    conf = nemo_io.load_context(FIXTURES / case, subpath="model.config", build=False)
    cls = conf.__fn_or_cls__
    assert f"{cls.__module__}.{cls.__qualname__}" == old["_target_"]  # the recorded import path still resolves
    new = _init_values(conf)
    differ = {k: (v, new.get(k, "<missing>")) for k, v in old.items() if k != "_target_" and not _same(v, new.get(k))}
    assert differ == {}
    model = nemo_io.load_context(FIXTURES / case, subpath="model")  # and NeMo builds the model object from it
    assert type(model).__name__ == "CosmosARModel" and type(model.config) is cls
    assert model.config.seq_length == math.prod(old["latent_shape"])


@pytest.mark.parametrize("case", CASES)
def test_old_io_json_gives_the_old_architecture(nemo_io, case):
    from nemo_cosmos_ar.model.presets import get_preset

    arch = nemo_io.load_context(FIXTURES / case, subpath="model.config").cosmos_config()
    tiny = get_preset("tiny")
    if case == "import_custom":
        assert (arch.n_layers, arch.ffn_hidden_size, arch.name) == (3, 96, "custom")
        arch.n_layers, arch.ffn_hidden_size = tiny.n_layers, tiny.ffn_hidden_size
    assert arch == tiny  # dataclass equality: every architecture field (name is not compared)


@pytest.mark.parametrize("case", CASES)
def test_every_project_object_named_in_old_io_json_still_imports(case):
    """The training context also names the recipe's callbacks, precision plugin, strategy and optimizer module; NeMo
    does not rebuild those on load, but a tool that reads the whole context does: their paths must stay."""
    import importlib

    refs = set()

    def walk(x):
        if isinstance(x, dict):
            if x.get("type") == "pyref" and x["module"].startswith("nemo_cosmos_ar"):
                refs.add((x["module"], x["name"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(json.loads((FIXTURES / case / "io.json").read_text()))
    assert refs and all(hasattr(importlib.import_module(m), n) for m, n in refs), sorted(refs)
    if case == "train_tiny":
        assert {n for _, n in refs} >= {"CosmosARMetrics", "CosmosStrategy", "CosmosPrecision", "CosmosOptimizerModule"}


@pytest.mark.parametrize("name", ["CosmosARNeMoConfig", "CosmosARConfigTiny", "CosmosARConfig4B", "CosmosARConfig12B"])
def test_config_classes_keep_their_old_defaults(nemo_io, name):
    """io.json of a preset import records only the precision arguments: the 4B/12B architecture comes from the
    class defaults, which must stay those of 3c124d7 (``class_defaults.json``, written by ``dump_defaults.py``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dump_defaults", FIXTURES / "dump_defaults.py")
    dump = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dump)
    from nemo_cosmos_ar.nemo_glue import model

    old = json.loads((FIXTURES / "class_defaults.json").read_text())[name]
    new = dump.defaults(getattr(model, name))
    assert {k: (v, new.get(k, "<missing>")) for k, v in old.items() if new.get(k, "<missing>") != v} == {}
    assert set(new) == set(old)


def test_old_context_reads_weights_bit_exactly(tmp_path):
    """A tiny checkpoint whose context is the frozen old one: `cosmos-ar convert export` and the NeMo reader give
    back the imported weights bit for bit (scripts/compat_old_checkpoint.py, one process)."""
    script = REPO / "tests" / "scripts" / "compat_old_checkpoint.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(FIXTURES / "import_tiny")],
        capture_output=True,
        text=True,
        timeout=600,
        env=child_env(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res == {"context_is_old": True, "reader_config": "tiny", "reader_bit_exact": True, "export_bit_exact": True}
