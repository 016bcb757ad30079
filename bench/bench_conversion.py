"""Checkpoint conversion at the real 4B shapes on CPU: wall time and peak memory per step.

Writes random bf16 weights in the released ``model.pt`` layout (streamed, one tensor at a time), then runs each
conversion as its own ``cosmos-ar convert`` process, exactly as a user would:

    write      random 4B weights -> model.pt                       (this process, streamed)
    import     model.pt -> NeMo distributed checkpoint (TP=1)
    export     NeMo -> model.pt                                    (then compared bit by bit with the input)
    export_tp4 NeMo -> model_model_mp_{0..3}.pt
    export_hf  NeMo -> config.json + model.safetensors + README.md

Per step it reports wall time, the step process's peak RSS (``VmHWM`` sampled every 0.1 s; it counts the
memory-mapped checkpoint pages too, which the kernel can drop at any time) and the peak anonymous memory of the
step's process tree (``Pss_Anon`` summed over the processes, sampled every 0.1 s: heap memory that cannot be given
back). Needs about 5 copies of the weights on disk (8 GB each for 4B) at once; the folder is deleted at the end
unless ``--keep``.

Usage::

    python bench/bench_conversion.py                           # 4B, in $TMPDIR
    python bench/bench_conversion.py --model tiny              # seconds; checks the script
    python bench/bench_conversion.py --workdir /scratch/b --keep --steps import,export
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.conversion import native_io  # noqa: E402
from nemo_cosmos_ar.model.presets import get_preset  # noqa: E402

GiB = 2**30


def anon_memory(pid: int) -> int:
    """Heap (anonymous) memory of ``pid`` and all its descendants, in bytes: the sum of ``Pss_Anon`` (pages shared
    copy-on-write by forked writer processes are split between them, so nothing is counted twice)."""
    total = 0
    for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            with open(f"/proc/{p.pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss_Anon:"))
        except (OSError, StopIteration, psutil.Error):
            pass
    return total


def hwm(pid: int) -> int:
    """Peak RSS (``VmHWM``) of ``pid`` since its exec, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


class MemoryPeak:
    """Samples every 0.1 s in a thread: ``rss`` = highest ``VmHWM`` of ``pid`` (its peak RSS, mapped file pages
    included), ``anon`` = highest ``anon_memory`` of its process tree."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid, self.rss, self.anon = pid or os.getpid(), 0, 0

    def __enter__(self):
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.1):
            try:
                self.rss = max(self.rss, hwm(self.pid))
                self.anon = max(self.anon, anon_memory(self.pid))
            except (OSError, StopIteration, psutil.Error):
                return

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_step(argv: list[str]) -> tuple[float, int, int]:
    """Run ``cosmos-ar <argv>`` in a child; return (wall s, its peak RSS, peak anonymous memory of its tree)."""
    cmd = [sys.executable, "-m", "nemo_cosmos_ar.cli", *argv]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    with MemoryPeak(proc.pid) as mem:
        out = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-4000:]}")
    return wall, mem.rss, mem.anon


def random_weights(cfg, seed: int = 0):
    """Random bf16 tensors in the released order, made one at a time (norms near 1, weights ~N(0, 0.02))."""
    g = torch.Generator().manual_seed(seed)
    for k, shape in native_io.native_shapes(cfg).items():
        if len(shape) == 1:
            yield k, (1.0 + 0.1 * torch.randn(shape, generator=g)).to(torch.bfloat16)
        else:
            yield k, torch.randn(shape, generator=g, dtype=torch.bfloat16).mul_(0.02)


def same_files(a: Path, b: Path) -> bool:
    x, y = torch.load(a, weights_only=True, mmap=True), torch.load(b, weights_only=True, mmap=True)
    return list(x) == list(y) and all(x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]) for k in x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="4b", help="preset (default 4b)")
    ap.add_argument("--workdir", help="scratch folder (default: a new one under $TMPDIR)")
    ap.add_argument("--steps", default="import,export,export_tp4,export_hf")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    cfg = get_preset(args.model)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_conversion_"))
    work.mkdir(parents=True, exist_ok=True)
    need = 5 * cfg.num_params() * 2
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(f"{work}: {free / GiB:.0f} GiB free, the benchmark needs about {need / GiB:.0f} GiB")
    src, nemo = work / "model.pt", work / "nemo"
    tp = 4 if cfg.n_kv_heads % 4 == 0 else 2  # the tiny model has 2 KV heads
    rows = []
    try:
        with MemoryPeak() as mem:
            t0 = time.perf_counter()
            native_io.write_model_pt(src, random_weights(cfg), cfg)
            wall = time.perf_counter() - t0
        rows.append(("write random model.pt (streamed)", wall, mem.rss, mem.anon, du(src)))
        export = ["convert", "export", "--checkpoint", str(nemo), "--output"]
        steps = {
            "import": (
                "import model.pt -> NeMo (TP=1)",
                ["convert", "import", "--source", str(src), "--output", str(nemo)],
                nemo,
            ),
            "export": ("export NeMo -> model.pt", [*export, str(work / "out_pt")], work / "out_pt"),
            "export_tp4": (
                f"export NeMo -> {tp} TP shards",
                [*export, str(work / "out_tp"), "--tp", str(tp)],
                work / "out_tp",
            ),
            "export_hf": (
                "export NeMo -> HF safetensors",
                [*export, str(work / "out_hf"), "--format", "hf"],
                work / "out_hf",
            ),
        }
        exact = None
        for name in args.steps.split(","):
            label, argv, out = steps[name]
            print(f"running {label} ...", flush=True)
            wall, rss, used = run_step(argv)
            rows.append((label, wall, rss, used, du(out)))
            if name == "export":
                t0 = time.perf_counter()
                exact = same_files(src, out / "model.pt")
                rows.append(("compare exported model.pt with the input", time.perf_counter() - t0, 0, 0, 0))
            elif name != "import":
                shutil.rmtree(out)  # keep the disk footprint down
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    print(
        f"\n{cfg.name}: {cfg.num_params() / 1e9:.3f} B parameters, bf16; torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {ram:.0f} GiB RAM"
    )
    print("\n| step | wall s | peak RSS GiB | peak anonymous GiB | output GiB |")
    print("|---|---:|---:|---:|---:|")
    for label, wall, rss, used, size in rows:
        cells = [
            f"{wall:.1f}",
            f"{rss / GiB:.2f}" if rss else "-",
            f"{used / GiB:.2f}" if rss else "-",
            f"{size / GiB:.2f}" if size else "-",
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if exact is not None:
        print(f"\nround trip model.pt -> NeMo -> model.pt bit-exact: {exact}")


if __name__ == "__main__":
    main()
