"""generate imports Megatron-Core without the C++ extension build its import starts (engine.py,
``skip_megatron_extension_builds``): Megatron 0.15 calls ``torch.utils.cpp_extension.load_inline`` for
``managed_alloc_runtime`` in ``megatron.core.inference.unified_memory``, ~20 s of g++ on a machine with a CUDA toolkit."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A fresh interpreter (this process may have imported Megatron already): every load_inline call is recorded, and
# the real one is never reached. First the pipeline's import, then, as a control, the same Megatron module imported
# again without the guard.
CHILD = textwrap.dedent(
    """
    import importlib, json, sys, warnings
    warnings.simplefilter("ignore")
    from torch.utils import cpp_extension
    calls = []
    def recorder(name, *args, **kwargs):
        calls.append(name)
        raise OSError("recorder: no build in tests")
    cpp_extension.load_inline = recorder
    from nemo_cosmos_ar.inference import engine as en
    en._quiet_megatron_import()
    um = sys.modules["megatron.core.inference.unified_memory"]
    guarded = {"calls": list(calls), "pool": um.has_unified_memory, "restored": cpp_extension.load_inline is recorder}
    calls.clear()
    with en.skip_megatron_extension_builds():
        try:
            cpp_extension.load_inline("other_ext", cpp_sources=[])
        except OSError:
            pass
    passed = list(calls)
    calls.clear()
    del sys.modules["megatron.core.inference.unified_memory"]
    importlib.import_module("megatron.core.inference.unified_memory")
    unguarded = list(calls)
    calls.clear()
    from nemo_cosmos_ar.runtime import prepare_process  # an entry point's process-wide fixes
    prepare_process(nemo=False)
    del sys.modules["megatron.core.inference.unified_memory"]
    um = importlib.import_module("megatron.core.inference.unified_memory")
    process = {"calls": list(calls), "pool": um.has_unified_memory, "wrapped": cpp_extension.load_inline is not recorder}
    print(json.dumps({"guarded": guarded, "other": passed, "unguarded": unguarded, "process": process}))
    """
)


@pytest.fixture(scope="module")
def child_report():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_generate_import_builds_no_megatron_extension(child_report):
    assert child_report["guarded"] == {"calls": [], "pool": False, "restored": True}


def test_other_extension_builds_pass_through(child_report):
    assert child_report["other"] == ["other_ext"]


def test_entry_points_refuse_the_build_for_the_whole_process(child_report):
    # runtime.prepare_process (the CLI's and the recipes' set-up) wraps load_inline for good: NeMo's own Megatron
    # import, after it, builds nothing either.
    assert child_report["process"] == {"calls": [], "pool": False, "wrapped": True}


def test_megatron_import_does_build_without_the_guard(child_report):
    # The control: Megatron's module does ask for the build, so the first test can fail.
    assert child_report["unguarded"] == ["managed_alloc_runtime"]
