"""The AR prefill's first call in a fresh process, by SDPA backend order (issue 13).

In the whole generate the prefill of the 9-frame prompt (5,120 tokens) takes 0.8-1.4 s (calls a8, e8: main() less
the printed stages), where bench_generate.py, which prefills once before it measures, prints 0.07 s. The suspect is
the first call's set-up (cuDNN builds an execution plan per new attention shape; cuBLAS picks its GEMMs). Each order
runs in a fresh child process: build the random 4B, then prefill three times, timing each.

    python bench/bench_prefill_first.py            # one GPU
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def child(order: str) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from bench_generate import random_mcore
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from nemo_cosmos_ar.inference import engine as en
    from nemo_cosmos_ar.model import layer_spec
    from nemo_cosmos_ar.model.presets import get_preset

    if order == "flash":
        back = [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
        layer_spec.preferred_sdpa_backends = lambda device: sdpa_kernel(back, set_priority=True)
    device = en.init_parallel(1, torch.device("cuda"))
    cfg = get_preset("4b")
    engine = en.McoreEngine(random_mcore(cfg, 1, device, torch.bfloat16).eval(), cfg)
    tokens = torch.randint(0, cfg.vocab_size, (1, 5120), device=device)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            cache = engine.new_cache(1, 12800)
            torch.cuda.synchronize()
            t = time.perf_counter()
            engine.prefill(tokens, cache)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
            del cache
    print(f"| {order} first | " + " | ".join(f"{x:.3f}" for x in times) + " |", flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; 4B prefill of 5,120 tokens, fresh processes")
    print("| SDPA order | first s | second s | third s |\n|---|---:|---:|---:|", flush=True)
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{os.environ.get('PYTHONPATH', '')}")
    for order in ("cudnn", "flash", "cudnn"):
        out = subprocess.run([sys.executable, __file__, "--child", order], capture_output=True, text=True, env=env)
        rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
        print(rows[-1] if rows else f"| {order} | failed: {(out.stderr or out.stdout)[-300:]!r} |", flush=True)


if __name__ == "__main__":
    main()
