"""How much does loading the diffusion decoder on a thread slow a graph-replay decode beside it? (issue 13)

Call a10 (ninth session) found that starting the decoder's background load after the AR prefill made the prefill
0.7-1.1 -> 0.1-0.2 s but the AR decode beside the load 13.2-13.4 -> 15.9-16.1 s: the load costs the decode ~3 s
when they fully overlap. This script finds which part of the load does it. The "decode" is a CUDA graph of 64 bf16
matrix-vector products over 7.5 GB of weights (~1.7 ms a replay, bandwidth-bound like the int8 AR step), replayed
``--replays`` times from the main thread; beside it a thread runs one of:

* ``decoder``: what generate runs, ``DiffusionDecoder(..., background=True, gemm="fp8")`` (the DiT from its
  memory-mapped ``model.pt`` with ``module.to(cuda)`` on a side stream, its FP8 conversion, the CV8x8x8 TorchScript);
* ``pageable``: only the DiT's tensors, each ``.to(cuda, non_blocking=True)`` straight from the memory map;
* ``staged``: the same bytes through two reusable 256 MB pinned buffers into one preallocated GPU buffer (the CPU
  copies into pinned memory, the DMA copies from it: no pageable transfers, one allocation);
* ``jit``: only ``torch.jit.load`` of the CV8x8x8 ``decoder.jit`` to the GPU.

For each: the load's seconds alone, the replays' seconds alone, and both at once (wall until both end, and the
replays' own seconds). ``extra`` = replays beside the load - replays alone.

    python bench/bench_load_interference.py --work-dir /tmp/e2e    # after bench_generate_e2e.py --setup-only
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.checkpoint import read_state_dict  # noqa: E402
from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR  # noqa: E402

MODES = ("decoder", "pageable", "staged", "jit")


def decode_graph(dev: torch.device):
    ws = [torch.randn(4096, 14336, device=dev, dtype=torch.bfloat16) for _ in range(64)]
    x = torch.randn(14336, device=dev, dtype=torch.bfloat16)
    out = torch.empty(64, 4096, device=dev, dtype=torch.bfloat16)
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for i, w in enumerate(ws):
            torch.mv(w, x, out=out[i])
    torch.cuda.current_stream(dev).wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i, w in enumerate(ws):
            torch.mv(w, x, out=out[i])
    return g, (ws, x, out)  # the graph reads and writes these: they must outlive it


def replays(g, n: int) -> float:
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        g.replay()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def load_pageable(sd, dev):
    side = torch.cuda.Stream(dev)
    with torch.cuda.stream(side):
        out = {k: v.to(dev, non_blocking=True) for k, v in sd.items()}
    side.synchronize()
    return out


def load_staged(sd, dev, chunk=256 << 20):
    total = sum(v.numel() * v.element_size() for v in sd.values())
    dst = torch.empty(total, dtype=torch.uint8, device=dev)
    bufs = [torch.empty(chunk, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
    done = [None, None]
    side = torch.cuda.Stream(dev)
    off, k = 0, 0
    with torch.cuda.stream(side):
        for v in sd.values():
            src = v.contiguous().view(-1).view(torch.uint8)
            pos = 0
            while pos < src.numel():
                n = min(chunk, src.numel() - pos)
                if done[k] is not None:
                    done[k].synchronize()
                bufs[k][:n].copy_(src[pos : pos + n])
                dst[off : off + n].copy_(bufs[k][:n], non_blocking=True)
                ev = torch.cuda.Event()
                ev.record(side)
                done[k] = ev
                pos, off, k = pos + n, off + n, 1 - k
    side.synchronize()
    return dst


def run_load(mode: str, root: Path, dev: torch.device):
    dd_dir, cv_dir = root / DIFFUSION_DECODER_DIR, root / CV_TOKENIZER_DIR
    if mode == "decoder":
        dd = ddp.DiffusionDecoder(dd_dir, cv_dir, device=dev, dtype=torch.bfloat16, gemm="fp8", background=True)
        dd._wait_for_loads()
        return dd
    if mode == "jit":
        return torch.jit.load(str(cv_dir / "decoder.jit"), map_location=dev)
    sd = read_state_dict(dd_dir / "model.pt")
    return load_pageable(sd, dev) if mode == "pageable" else load_staged(sd, dev)


def timed_load(mode, root, dev) -> float:
    t = time.perf_counter()
    held = run_load(mode, root, dev)
    torch.cuda.synchronize()
    took = time.perf_counter() - t
    del held
    torch.cuda.empty_cache()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/e2e"))
    ap.add_argument("--replays", type=int, default=5000)
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    dev = torch.device("cuda")
    root = args.work_dir / "checkpoints"
    g, _ = decode_graph(dev)
    replays(g, 50)
    timed_load("pageable", root, dev)  # page cache warm, as in a second generate on a machine
    print("| load | load alone s | replays alone s (ms each) | both: wall s | replays beside it s | extra s |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in args.modes.split(","):
        alone_load = timed_load(mode, root, dev)
        alone = replays(g, args.replays)
        th = threading.Thread(target=timed_load, args=(mode, root, dev))
        t = time.perf_counter()
        th.start()
        beside = replays(g, args.replays)
        th.join()
        wall = time.perf_counter() - t
        print(
            f"| {mode} | {alone_load:.2f} | {alone:.2f} ({1e3 * alone / args.replays:.3f}) | {wall:.2f} | "
            f"{beside:.2f} | {beside - alone:+.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
