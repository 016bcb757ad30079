"""The batch-1 top-p draw on CUDA: cosmos-predict1's torch ops against sample_kernel's sort + Triton kernel (issue 13).

    python3 bench/bench_sampler.py [--vocab 64000] [--draws 2000]

Prints, per logit spread (``scale``: 1 keeps ~45% of the vocabulary at top_p 0.8, as the random-weight benchmarks
do; 4 keeps a few hundred tokens), the microseconds per draw inside a CUDA graph of 50 draws (GPU time, what the
decode step pays) and eagerly (200 draws, one sync), for:

* ``torch``: ``sample(fp32 logits, kernel="torch")``, what generate ran before (an fp32 logits buffer);
* ``kernel``: ``sample(bf16 logits, kernel="auto")``, what it runs now;
* its parts alone: the bf16 sort, the fp32 sort, the exponential draw, the Triton kernel on sorted rows.

Then the agreement over ``--draws`` draws (fresh logits each, the same seed for both): tokens equal, nucleus sizes
equal (the kernel's against the ops' count of kept ranks).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nemo_cosmos_ar.inference import sample_kernel as sk  # noqa: E402
from nemo_cosmos_ar.inference import sampling as sm  # noqa: E402


def graph_us(fn, calls: int = 50, reps: int = 20) -> float:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / calls)
    return sorted(times)[len(times) // 2]


def eager_us(fn, calls: int = 200) -> float:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1e6 / calls


def time_rows(scale: float, V: int, top_p: float, ref_cfg, new_cfg):
    """(name, graph us, eager us) per way of drawing from one row of logits of spread ``scale``."""
    dev = torch.device("cuda")
    x16 = (torch.randn(1, V, device=dev) * scale).to(torch.bfloat16)
    x32 = x16.float()
    race = sm.exponential_draw(1, V, torch.Generator(dev).manual_seed(0), dev)
    keys, order = torch.sort(x16, dim=-1, descending=True, stable=True)
    rows = {
        "torch (fp32 logits, NVIDIA's ops)": lambda: sm.sample(x32, ref_cfg),
        "kernel (bf16 logits, sort + Triton)": lambda: sm.sample(x16, new_cfg),
        "  part: bf16 sort (stable)": lambda: torch.sort(x16, dim=-1, descending=True, stable=True),
        "  part: fp32 sort": lambda: torch.sort(x32, dim=-1, descending=True),
        "  part: exponential draw": lambda: sm.exponential_draw(1, V, None, dev),
        "  part: Triton kernel on sorted rows": lambda: sk.race_sorted(keys, order, race, 1.0, top_p),
    }
    return [(name, graph_us(fn), eager_us(fn)) for name, fn in rows.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=64000)
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--top-p", type=float, default=0.8)
    args = ap.parse_args()
    dev = torch.device("cuda")
    V, top_p = args.vocab, args.top_p
    ref_cfg = sm.SamplingConfig(top_p=top_p, kernel="torch")
    new_cfg = sm.SamplingConfig(top_p=top_p, kernel="auto")
    print(
        f"top-p draw, batch 1, vocabulary {V}, top_p {top_p}, {torch.cuda.get_device_name()}, torch {torch.__version__}"
    )
    print("\n| scale | what | graph us | eager us |\n|---:|---|---:|---:|")
    for scale in (1.0, 4.0):
        for name, us_graph, us_eager in time_rows(scale, V, top_p, ref_cfg, new_cfg):
            print(f"| {scale:g} | {name} | {us_graph:.1f} | {us_eager:.1f} |", flush=True)
    print("\n| scale | draws | tokens equal | nucleus sizes equal | mean nucleus |\n|---:|---:|---:|---:|---:|")
    for scale in (1.0, 4.0):
        same_tok = same_kept = 0
        sizes = 0.0
        g = torch.Generator(dev).manual_seed(1)
        for i in range(args.draws):
            x16 = (torch.randn(1, V, device=dev, generator=g) * scale).to(torch.bfloat16)
            ga, gb = torch.Generator(dev).manual_seed(i), torch.Generator(dev).manual_seed(i)
            a = sm.sample(x16.float(), ref_cfg, ga)
            b = sm.sample(x16, new_cfg, gb)
            probs = torch.softmax(x16.float(), dim=-1)
            sp, _ = torch.sort(probs, dim=-1, descending=True)
            want = int((sm._nucleus_of_sorted(sp, top_p) > 0).sum())
            ks, ko = torch.sort(x16, dim=-1, descending=True, stable=True)
            race = sm.exponential_draw(1, V, torch.Generator(dev).manual_seed(i), dev)
            _, kept = sk.race_sorted(ks, ko, race, 1.0, top_p)
            same_tok += int(torch.equal(a, b))
            same_kept += int(int(kept[0]) == want)
            sizes += want
        n = args.draws
        print(f"| {scale:g} | {n} | {same_tok / n:.4f} | {same_kept / n:.4f} | {sizes / n:.0f} |", flush=True)


if __name__ == "__main__":
    main()
