"""Why the diffusion decoder samples slower inside ``cosmos-ar generate`` than alone (issue 13 diagnosis).

In one process: (A) build the decoder from the ``bench_generate_e2e.py`` folders, time a few guided steps and profile
one (CUDA kernels by time), free it; then (B) run ``cosmos-ar generate`` in-process with the decoder on, and on its
first ``decode_tokens`` call time and profile the same steps again before the real decode continues. Prints the two
step times, the kernel tables and the process settings that could differ (SDPA priority, matmul flags, allocator).

    python bench/bench_dd_in_generate.py --work-dir /tmp/e2e     # after bench_generate_e2e.py wrote the folders
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.config import SamplerConfig  # noqa: E402
from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR  # noqa: E402


def settings() -> str:
    m = torch.backends.cuda.matmul
    return (
        f"sdp priority {torch._C._get_sdp_priority_order()}, flash {torch.backends.cuda.flash_sdp_enabled()}, "
        f"cudnn_sdp {torch.backends.cuda.cudnn_sdp_enabled()}, mem_eff {torch.backends.cuda.mem_efficient_sdp_enabled()}, "
        f"bf16 reduced {m.allow_bf16_reduced_precision_reduction}, tf32 {m.allow_tf32}, "
        f"deterministic {torch.are_deterministic_algorithms_enabled()}, grad {torch.is_grad_enabled()}, "
        f"inference_mode {torch.is_inference_mode_enabled()}, autocast {torch.is_autocast_enabled('cuda')}, "
        f"allocated {torch.cuda.memory_allocated() / 2**30:.1f} GiB, reserved {torch.cuda.memory_reserved() / 2**30:.1f} GiB, "
        f"alloc retries {torch.cuda.memory_stats().get('num_alloc_retries', 0)}"
    )


def probe(dd, tokens, label: str, steps: int) -> None:
    keep = dd.sampler
    dd.sampler = SamplerConfig(num_steps=steps)
    ORIGINAL(dd, tokens, seed=0)
    times = list(dd.stats.step_s)
    dd.sampler = SamplerConfig(num_steps=1)
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CUDA] if torch.cuda.is_available() else [ProfilerActivity.CPU]
    with profile(activities=acts) as prof:
        ORIGINAL(dd, tokens, seed=0)
    dd.sampler = keep
    print(f"## {label}: steps {[round(t, 3) for t in times]}, median {statistics.median(times):.3f} s")
    print(f"## {label}: {settings()}")
    print(
        prof.key_averages().table(
            sort_by="self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total",
            row_limit=14,
            max_name_column_width=90,
        )
    )
    sys.stdout.flush()


ORIGINAL = ddp.DiffusionDecoder.decode_tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="CPU, the tiny folders of bench_generate_e2e.py --smoke")
    args = ap.parse_args()
    ck = args.work_dir / "checkpoints"
    grid, device = ((1, 5, 4, 6), "cpu") if args.smoke else ((1, 5, 40, 64), "cuda")
    tokens = torch.randint(0, 64000, grid, generator=torch.Generator().manual_seed(0))
    t = time.perf_counter()
    dd = ddp.DiffusionDecoder(ck / DIFFUSION_DECODER_DIR, ck / CV_TOKENIZER_DIR, device=device)
    print(f"# built in {time.perf_counter() - t:.1f}s")
    probe(dd, tokens, "A alone", args.steps)
    dd.close()
    del dd

    first = [True]

    def wrapped(self, grid, **kw):
        if first[0]:
            first[0] = False
            probe(self, grid, "B inside generate", args.steps)
        return ORIGINAL(self, grid, **kw)

    ddp.DiffusionDecoder.decode_tokens = wrapped
    from nemo_cosmos_ar.cli import main as cli

    rc = cli(
        [
            "generate", "--checkpoint-dir", str(ck), "--input", str(args.work_dir / "input.png"),
            "--output", str(args.work_dir / "diag.mp4"), "--overwrite", "--disable-guardrail", "--no-progress",
    ] + (["--model", "tiny", "--device", "cpu"] if args.smoke else []))  # fmt: skip
    print(f"# generate rc {rc}")


if __name__ == "__main__":
    main()
