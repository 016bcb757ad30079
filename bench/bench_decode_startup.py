"""Start-up of prepare-data's decode processes: ``forkserver`` (the default on Linux) against ``spawn``.

Each start method runs in a fresh interpreter (the fork server belongs to the process that starts it, so a second
measurement in one process would find it running): the time from making ``pipeline._Processes`` (P decode processes)
to the first unit of the first process, and to the first unit of every process. No GPU needed; on the H200 host
run it with the prepare-data bench's settings to see what the 16 decode processes cost before any frame arrives.

Usage::

    python bench/bench_decode_startup.py --processes 16 --videos-dir /tmp/prep/videos   # the H200 bench's videos
    python bench/bench_decode_startup.py --smoke                                # 2 processes, tiny videos
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def measure(folder: str, work: str, processes: int, method: str, num_frames: int, batch: int) -> dict:
    """One start method, in this process: videos from ``folder``, the plan written to ``work``."""
    import torch.multiprocessing as mp

    from nemo_cosmos_ar.data import pipeline
    from nemo_cosmos_ar.data import prepare as prep
    from nemo_cosmos_ar.data.windows import WindowSpec

    windows = WindowSpec(num_frames, num_frames, 1)
    cfg = prep.PrepareConfig(
        videos=folder, output=f"{work}/out", resolution=(64, 96), tokenizer="unused", windows=windows, batch_size=batch
    )  # the clip size is not used by decoding
    plan = prep.make_plan(cfg, "0" * 64)
    plan_path = Path(work) / "plan.json"
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
    p.add_argument(
        "--videos-dir", help="existing MP4s to decode (the GPU image cannot write them; default: write some)"
    )
    p.add_argument("--smoke", action="store_true", help="2 processes, 72x108 videos")
    p.add_argument("--child", help=argparse.SUPPRESS)  # start method of one measurement
    p.add_argument("--work", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.smoke:
        a.processes, a.video_size, a.video_frames, a.num_frames, a.batch_size = 2, "72x108", 40, 17, 2
    vh, vw = (int(x) for x in a.video_size.split("x"))
    if a.child:
        print(json.dumps(measure(a.videos_dir, a.work, a.processes, a.child, a.num_frames, a.batch_size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.videos_dir
        if folder is None:
            from nemo_cosmos_ar.data import samples

            folder = f"{tmp}/videos"
            os.makedirs(folder)
            for i in range(a.processes * 2):  # two videos per process: every process gets work
                clip = samples.render_bouncing_balls(a.video_frames, vh, vw, seed=i)
                samples.write_mp4(f"{folder}/video_{i:03d}.mp4", clip, fps=24.0)
        rows = []
        for _ in range(a.repeats):
            for method in a.methods.split(","):
                cmd = [
                    sys.executable,
                    __file__,
                    *sys.argv[1:],
                    "--child",
                    method,
                    "--videos-dir",
                    folder,
                    "--work",
                    tmp,
                ]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
    count = len([f for f in os.listdir(folder) if f.endswith(".mp4")]) if a.videos_dir else a.processes * 2
    print(
        f"\n{count} videos from {a.videos_dir or f'{a.video_frames}x{vh}x{vw} written here'}, {a.num_frames}-frame "
        f"clips, units of {a.batch_size}\n"
    )
    print("| start method | decode processes | first unit s | first unit of every process s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['processes']} | {r['first_s']:.2f} | {r['all_s']:.2f} |")


if __name__ == "__main__":
    main()
