"""Run the GPU test tier (tests/test_gpu.py) without pytest and print a markdown summary of what it measured.

    python bench/gpu_tier_run.py              # on a CUDA machine (bench/gpu_test_tier.sh sets up the H200)
    python bench/gpu_tier_run.py recipe       # only the tests whose names contain "recipe"
    COSMOS_GPU_TIER_SMOKE=1 python bench/gpu_tier_run.py   # CPU rehearsal (bench/gpu_test_tier.sh --smoke)

Each ``test_*`` function of the file runs in order; a failed assertion is reported with its message and the run goes
on. Exit status 0 when every test passed. ``make test-gpu`` runs the same file through pytest.
"""

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from nemo_cosmos_ar.runtime import prepare_process

    prepare_process()  # this script is an entry point (NumPy 2 on the GPU image; CUDA stand-ins in a CPU smoke run)
    import torch

    spec = importlib.util.spec_from_file_location("test_gpu", REPO / "tests" / "test_gpu.py")
    tier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tier)
    if not (tier.SMOKE or torch.cuda.is_available()):
        print("no CUDA device: set COSMOS_GPU_TIER_SMOKE=1 for the CPU rehearsal", file=sys.stderr)
        return 2
    only = sys.argv[1:]  # optional substrings: run only the tests whose names contain one of them
    tests = [(name, fn) for name, fn in vars(tier).items() if name.startswith("test_") and callable(fn)]
    tests = [(n, f) for n, f in tests if not only or any(o in n for o in only)]
    rows = []
    for name, fn in tests:
        t0 = time.perf_counter()
        try:
            fn()
            status = "pass"
        except Exception as e:  # noqa: BLE001 -- report every failure and keep going
            traceback.print_exc()
            status = f"FAIL: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        rows.append((name, status, time.perf_counter() - t0))
    device = "CPU (smoke)" if tier.SMOKE else torch.cuda.get_device_name()
    print(f"\nGPU test tier on {device}, torch {torch.__version__}\n")
    print("| test | result | s | measured |")
    print("|---|---|---:|---|")
    measured = {k.split(" ")[0]: v for k, v in tier.MEASURED.items()}
    keys = {  # test function -> its MEASURED key
        "test_cuda_graph_decode_equals_eager_step_and_teacher_forcing": "cuda_graph_decode",
        "test_cudnn_attention_equals_math_attention": "cudnn_attention",
        "test_tokenizer_bf16_against_fp32": "tokenizer_bf16_vs_fp32",
        "test_dd_context_parallel_on_gpu_kernels": "dd_context_parallel",
        "test_dd_frames_converted_on_the_gpu_equal_the_cpu_path": "dd_frames_on_gpu",
        "test_4b_recipe_two_steps": "recipe_4b_2_steps",
    }
    for name, status, sec in rows:
        numbers = measured.get(keys.get(name, ""), {})
        print(f"| {name} | {status} | {sec:.1f} | {json.dumps(numbers, default=float)} |")
    return 0 if all(s == "pass" for _, s, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
