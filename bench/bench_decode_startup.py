"""Start-up of prepare-data's decode processes: ``forkserver`` (the default on Linux) against ``spawn``.

Each start method runs in a fresh interpreter (the fork server belongs to the process that starts it, so a second
measurement in one process would find it running): the time from making ``pipeline._Processes`` (P decode processes)
to the first unit of the first process, and to the first unit of every process. No GPU needed; on the H200 host
run it with the prepare-data bench's settings to see what the 16 decode processes cost before any frame arrives.

Usage::

    python bench/bench_decode_startup.py --processes 16 --video-size 720x1280   # the H200 bench's decode side
    python bench/bench_decode_startup.py --smoke                                # 2 processes, tiny videos
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def measure(folder: str, processes: int, method: str, size: tuple[int, int], num_frames: int, batch: int) -> dict:
    """One start method, in this process (``size``: the clip size of the plan, which decoding does not use)."""
    import torch.multiprocessing as mp

    from nemo_cosmos_ar.data import pipeline
    from nemo_cosmos_ar.data import prepare as prep
    from nemo_cosmos_ar.data.windows import WindowSpec

    windows = WindowSpec(num_frames, num_frames, 1)
    cfg = prep.PrepareConfig(
        videos=folder, output=f"{folder}/out", resolution=size, tokenizer="unused", windows=windows, batch_size=batch
    )
    plan = prep.make_plan(cfg, "0" * 64)
    plan_path = Path(folder) / "plan.json"
    plan_path.write_text(json.dumps(plan))
    if method == "spawn":
        pipeline._context = lambda: mp.get_context("spawn")
    units = list(range(len(plan["units"])))
    args = pipeline.ReaderArgs(folder, windows, 1, None)
    start = time.perf_counter()
    procs = pipeline._Processes(args, plan, str(plan_path), units, processes, 1)
    firsts = {}
    for u in units:  # the first unit of each process, in unit order (later units of one process come after)
        k = procs.owner[u]
        if k not in firsts:
            procs.get(u)
            firsts[k] = time.perf_counter() - start
            if len(firsts) == len(procs.procs):
                break
    procs.close()
    return {
        "method": method,
        "processes": len(procs.procs),
        "first_s": min(firsts.values()),
        "all_s": max(firsts.values()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=16)
    p.add_argument("--video-size", default="720x1280")
    p.add_argument("--video-frames", type=int, default=132)
    p.add_argument("--num-frames", type=int, default=33)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--methods", default="spawn,forkserver")
    p.add_argument("--repeats", type=int, default=2, help="fresh interpreters per method")
    p.add_argument("--smoke", action="store_true", help="2 processes, 72x108 videos")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.smoke:
        a.processes, a.video_size, a.video_frames, a.num_frames, a.batch_size = 2, "72x108", 40, 17, 2
    vh, vw = (int(x) for x in a.video_size.split("x"))
    if a.child:  # one measurement: folder,method
        folder, method = a.child.split(",")
        print(json.dumps(measure(folder, a.processes, method, (64, 96), a.num_frames, a.batch_size)))
        return
    from nemo_cosmos_ar.data import samples

    with tempfile.TemporaryDirectory() as tmp:
        count = a.processes * 2  # two videos per process: every process gets work
        for i in range(count):
            clip = samples.render_bouncing_balls(a.video_frames, vh, vw, seed=i)
            samples.write_mp4(f"{tmp}/video_{i:03d}.mp4", clip, fps=24.0)
        rows = []
        for _ in range(a.repeats):
            for method in a.methods.split(","):
                cmd = [sys.executable, __file__, "--child", f"{tmp},{method}", *sys.argv[1:]]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\n{count} videos of {a.video_frames}x{vh}x{vw}, {a.num_frames}-frame clips, units of {a.batch_size}\n")
    print("| start method | decode processes | first unit s | first unit of every process s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['processes']} | {r['first_s']:.2f} | {r['all_s']:.2f} |")


if __name__ == "__main__":
    main()
