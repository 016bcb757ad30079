"""A folder of videos -> a clip-token dataset (``train``/``val`` Megatron indexed datasets + ``metadata.json``).

Steps (docs/data.md): find the videos, probe their frame counts, cut every full window the way cosmos-predict1's
``VideoDataset`` does (``data.windows``), split train/val *by video* (overlapping windows of one video never land on
both sides), read + resize + centre-crop each window (``video_io``), encode it with the DV8x16x16 tokenizer in
batches, and write one document of T'·H'·W' uint16 ids per clip, ordered by (video path, first frame).

[Note: parallel, resumable, reproducible] The plan (videos, clips, and *units* = fixed batches of ``batch_size``
consecutive clips) is computed once and saved in ``<output>/_work/plan.json``. Workers -- torchrun ranks (one per
GPU) or ``workers`` local processes -- take contiguous runs of the units still to do and append each finished unit
to their own shard (``shard-<k>.tokens``: raw uint16 rows; ``shard-<k>.jsonl``: one committed line per unit, written
after the tokens are on disk). A killed run restarted with the same arguments cuts every shard back to its last
committed unit and does only the missing units. Because a unit is always encoded as the same batch, the merged
dataset is byte-identical however many workers ran and however often the run was interrupted.

Where the pieces live: this module plans (files -> videos -> clips -> units) and orchestrates (output folder,
workers, merge; ``prepare_dataset``). ``encode.py`` encodes the clips of a worker's units (``encode_clips``,
``run_worker``), which ``frames.py`` decodes and resizes (``ClipReader``, ``unit_clips``) and ``pipeline.py`` feeds
ahead of the encoder (prefetch thread or decode processes, stage timings); ``shards.py`` writes, repairs and merges the shards (``ShardWriter``,
``repair_shard``, ``done_units``, ``merge_shards``); ``prepare_config.py`` holds ``PrepareConfig``,
``PrepareError``, ``PrepareSummary`` and the on-disk constants (``WORK_DIR``, ``TOKEN_DTYPE``, ``FORMAT``, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import numpy as np
import torch

from nemo_cosmos_ar import checks
from nemo_cosmos_ar.data.dataset import METADATA
from nemo_cosmos_ar.data.encode import run_worker, worker_cores
from nemo_cosmos_ar.data.pipeline import Stats
from nemo_cosmos_ar.data.prepare_config import (
    PLAN_FILE,
    SPLITS,
    WORK_DIR,
    PrepareConfig,
    PrepareError,
    PrepareSummary,
    _short,
)
from nemo_cosmos_ar.data.shards import _shard_names, done_units, merge_shards, repair_shard
from nemo_cosmos_ar.data.windows import WindowSpec, window_starts
from nemo_cosmos_ar.tokenizer import grid

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
OUTPUT_FILES = ("train.bin", "train.idx", "val.bin", "val.idx", METADATA)


# ---------------------------------------------------------------------------------------------------------------
# Planning: files -> videos -> clips -> units
# ---------------------------------------------------------------------------------------------------------------


def find_video_files(root: str, exclude: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Relative paths of files under ``root`` with a video extension (sorted) and ``(path, reason)`` for the
    other files. Hidden files and folders and the ``exclude`` folder (the output) are ignored."""
    videos, others = [], []
    exclude = os.path.realpath(exclude) if exclude else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and os.path.realpath(os.path.join(dirpath, d)) != exclude
        )
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if name.lower().endswith(VIDEO_EXTENSIONS):
                videos.append(rel)
            else:
                others.append((rel, f"not a video file (extension not one of {', '.join(VIDEO_EXTENSIONS)})"))
    return sorted(videos), sorted(others)


def _probe(root: str, rel: str, spec: WindowSpec) -> tuple[dict | None, str | None]:
    from nemo_cosmos_ar import video_io

    path = os.path.join(root, rel)
    try:
        info = video_io.probe(path)
    except Exception as e:  # noqa: BLE001 -- any failure to open means "skip this file", never fatal
        return None, f"unreadable video ({_short(e)})"
    if info.num_frames < spec.span:
        return None, f"too short ({info.num_frames} frames; a clip spans {spec.span})"
    st = os.stat(path)
    return {
        "path": rel,
        "frames": int(info.num_frames),
        "fps": float(info.fps),
        "height": int(info.height),
        "width": int(info.width),
        "bytes": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }, None


def tokenizer_checksum(folder: str) -> str:
    """sha256 over the tokenizer's ``encoder.jit`` and ``decoder.jit`` (names and bytes)."""
    h = hashlib.sha256()
    for name in ("encoder.jit", "decoder.jit"):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: --tokenizer must be a Cosmos-Tokenize1-DV8x16x16 folder (encoder.jit, "
                "decoder.jit); see docs/data.md for how to get one or make a random-weight test tokenizer"
            )
        h.update(name.encode())
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # TorchScript files are zip archives
                raise PrepareError(
                    f"{path} is not a TorchScript file (it does not start like a zip archive): "
                    "--tokenizer must be a Cosmos-Tokenize1-DV8x16x16 folder; download it again"
                )
            f.seek(0)
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
    return "sha256:" + h.hexdigest()


def _fingerprint(cfg: PrepareConfig, checksum: str) -> dict:
    """Everything the bytes of the result depend on; a resumed run must match it."""
    return {
        "videos": os.path.abspath(cfg.videos),
        "resolution": list(cfg.resolution),
        "windows": asdict(cfg.windows),
        "tokenizer_checksum": checksum,
        "val_fraction": cfg.val_fraction,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "backend": cfg.backend,
        "device_type": cfg.device_type().split(":")[0],
        "dtype": "traced" if cfg.backend == "jit" else str(cfg.torch_dtype()).replace("torch.", ""),
        "dataset": cfg.dataset,
        # only when set, so that runs planned before the option existed still resume
        **({"resize_device": cfg.resize_device} if cfg.resize_device else {}),
    }


def val_videos(num_videos: int, val_fraction: float, seed: int) -> set[int]:
    """Indices of the videos held out: a seeded choice of ``round(n·f)`` (at least 1, at most n−1) videos."""
    if val_fraction <= 0 or num_videos < 2:
        return set()
    k = min(max(1, round(num_videos * val_fraction)), num_videos - 1)
    return {int(i) for i in np.random.default_rng(seed).permutation(num_videos)[:k]}


def make_plan(cfg: PrepareConfig, checksum: str, probe_threads: int = 8) -> dict:
    """Scan, probe and window the videos; returns the JSON-able plan (see the module docstring)."""
    files, skipped = find_video_files(cfg.videos, exclude=cfg.output)
    files_found = len(files) + len(skipped)
    if not files_found:
        raise PrepareError(f"{cfg.videos} contains no files; point --videos at a folder of MP4 videos")
    with ThreadPoolExecutor(max(1, min(probe_threads, len(files)))) as pool:
        probed = list(pool.map(lambda rel: _probe(cfg.videos, rel, cfg.windows), files))
    videos = [info for info in (p[0] for p in probed) if info is not None]
    skipped = sorted(skipped + [(rel, reason) for rel, (info, reason) in zip(files, probed) if info is None])
    if not videos:
        why = "; ".join(f"{p}: {r}" for p, r in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        raise PrepareError(
            f"none of the {files_found} files in {cfg.videos} gives a {cfg.windows.span}-frame clip ({why})"
        )
    held_out = val_videos(len(videos), cfg.val_fraction, cfg.seed)
    clips = []  # [video index, first frame, split index], ordered by (path, first frame)
    for i, v in enumerate(videos):
        v["split"] = SPLITS[1] if i in held_out else SPLITS[0]
        clips += [[i, s, int(i in held_out)] for s in window_starts(v["frames"], cfg.windows)]
    units = [[a, min(cfg.batch_size, len(clips) - a)] for a in range(0, len(clips), cfg.batch_size)]
    return {
        "fingerprint": _fingerprint(cfg, checksum),
        "files_found": files_found,
        "videos": videos,
        "skipped": skipped,
        "clips": clips,
        "units": units,
    }


# ---------------------------------------------------------------------------------------------------------------
# Orchestration: output folder, plan, workers (in-process, local processes or torchrun ranks), merge
# ---------------------------------------------------------------------------------------------------------------


def _check_inputs(cfg: PrepareConfig) -> str:
    """Every check that needs no writing: input folder, output placement and writability, tokenizer files.
    Returns the tokenizer checksum."""
    if not os.path.isdir(cfg.videos):
        what = "is not a folder" if os.path.exists(cfg.videos) else "does not exist"
        raise PrepareError(f"--videos {cfg.videos} {what}")
    checks.check_any_package(("av", "decord"), "reading videos", "pip install av")
    checksum = tokenizer_checksum(cfg.tokenizer)
    checks.check_no_overlap(cfg.output, [("--videos", cfg.videos), ("--tokenizer", cfg.tokenizer)])
    why = checks.writable_problem(cfg.output, inside=True)
    if why:
        raise PrepareError(f"cannot write to the output folder {cfg.output}: {why}")
    return checksum


def _load_plan(path: str) -> dict:
    try:
        with open(path) as f:
            plan = json.load(f)
        plan["fingerprint"].items()
        return plan
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PrepareError(
            f"{path} (the plan of an unfinished run) is damaged; pass --overwrite to start over"
        ) from None


def _setup(cfg: PrepareConfig) -> tuple[dict, bool, str | None]:
    """Check the inputs, then load (resume) or make the plan and claim the output folder.

    Returns (plan, resumed, the folder this call created or None). Nothing on disk changes until every check has
    passed and the plan is made (so a wrong --tokenizer or an empty --videos leaves everything as it was); an
    existing dataset is never deleted here: with --overwrite it stays in place until ``merge_shards`` swaps the new
    one in.
    """
    checksum = _check_inputs(cfg)
    work = os.path.join(cfg.output, WORK_DIR)
    plan_path = os.path.join(work, PLAN_FILE)
    if not cfg.overwrite and os.path.isfile(plan_path):
        plan = _load_plan(plan_path)
        want = _fingerprint(cfg, checksum)
        diff = {k: (plan["fingerprint"].get(k), v) for k, v in want.items() if plan["fingerprint"].get(k) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise FileExistsError(
                f"{cfg.output} holds an unfinished run with other settings ({changes}); "
                "rerun with the same settings to resume it, or pass --overwrite to start over"
            )
        for name in _shard_names(work):
            repair_shard(work, name, grid.tokens_per_clip(cfg.latent_shape))
        return plan, True, None
    if not cfg.overwrite and any(os.path.exists(os.path.join(cfg.output, n)) for n in OUTPUT_FILES):
        raise FileExistsError(f"{cfg.output} already holds a dataset; pass --overwrite to replace it")
    plan = make_plan(cfg, checksum)
    created = checks.topmost_missing(cfg.output)
    try:
        if cfg.overwrite:  # an earlier unfinished run is discarded; a finished dataset stays until the merge
            shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work, exist_ok=True)
        tmp = plan_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(plan, f)
        os.replace(tmp, plan_path)
    except BaseException:
        _discard(cfg, created)
        raise
    return plan, False, None if created is None else str(created)


def _discard(cfg: PrepareConfig, created) -> None:
    """Remove what a failed fresh run made: its work folder, and the output folder if the run created it."""
    shutil.rmtree(os.path.join(cfg.output, WORK_DIR), ignore_errors=True)
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


def _distributed() -> tuple[int, int, bool]:
    """(rank, world size, whether we created the process group). Under torchrun, joins a gloo group (used only for
    barriers and small objects) unless the caller already set one up."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    import datetime

    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:  # long timeout: ranks wait for the slowest at the barriers
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=48))
    return dist.get_rank(), dist.get_world_size(), created


def _share(obj, src: int = 0):
    """Broadcast a picklable object from ``src`` (identity without torchrun)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def _gather(obj) -> list:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _device_for(cfg: PrepareConfig, worker: int) -> str:
    if not cfg.device_type().startswith("cuda"):
        return "cpu"
    if cfg.device and ":" in cfg.device:
        return cfg.device
    return f"cuda:{worker % max(1, torch.cuda.device_count())}"


def _split_work(pending: list[int], parts: int) -> list[list[int]]:
    """Contiguous, nearly equal runs of units (neighbouring units share videos, hence cached frames)."""
    return [[int(u) for u in x] for x in np.array_split(np.asarray(pending, dtype=np.int64), parts)]


def _child(cfg: PrepareConfig, units: list[int], shard: str, device: str, threads: int, decoders: int, queue) -> None:
    """Entry point of a local worker process (``workers > 1``)."""
    import traceback

    try:
        torch.set_num_threads(threads)
        with open(os.path.join(cfg.output, WORK_DIR, PLAN_FILE)) as f:
            plan = json.load(f)
        stats = Stats()
        run_worker(
            cfg,
            plan,
            units,
            shard,
            device,
            on_progress=lambda n: queue.put(("progress", n)),
            threads=decoders,
            stats=stats,
        )
        queue.put(("done", shard, stats.as_dict()))
    except BaseException as e:  # noqa: BLE001 -- reported to the parent, which raises
        user_error = e if isinstance(e, (PrepareError, FileNotFoundError)) else None
        queue.put(("error", f"{shard}: {_short(e)}\n{traceback.format_exc()}", user_error))


def _run_local_workers(cfg: PrepareConfig, parts: list[list[int]], advance, stats: Stats) -> None:
    import queue as queue_mod

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // len(parts))
    decoders = worker_cores(len(parts))
    # A daemonic process may not start processes: workers with decode processes are not daemons (they are
    # terminated below all the same).
    procs = [
        ctx.Process(
            target=_child,
            daemon=cfg.decode_workers == 0,
            args=(cfg, units, f"shard-{w:03d}", _device_for(cfg, w), threads, decoders, queue),
        )
        for w, units in enumerate(parts)
    ]
    for p in procs:
        p.start()
    finished, error, aborted = 0, None, True
    try:
        while finished < len(procs) and error is None:
            try:
                msg = queue.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    error = (f"a worker process died (exit code {dead[0].exitcode}); rerun to resume", None)
                continue
            if msg[0] == "progress":
                advance(msg[1])
            elif msg[0] == "done":
                finished += 1
                stats.add(msg[2])
            else:
                error = msg[1:]
        aborted = False
    finally:  # on an error or an interrupt (Ctrl-C, SIGTERM to this process only) no worker is left running
        for p in procs:
            if (error is not None or aborted) and p.is_alive():
                p.terminate()
            p.join()
    if error is not None:
        if error[1] is not None:
            raise error[1]
        raise RuntimeError(f"prepare-data worker failed: {error[0]}")


def prepare_dataset(cfg: PrepareConfig, workers: int = 1, progress: bool = True, on_progress=None) -> PrepareSummary:
    """Turn ``cfg.videos`` into a clip-token dataset in ``cfg.output`` (resuming an unfinished run there).

    Args:
        cfg: what to prepare.
        workers: local worker processes (each its own shard; with GPUs, worker k uses GPU k mod #GPUs). Under
            torchrun leave it at 1: every rank is one worker.
        progress: show a progress bar (on rank 0).
        on_progress: optional ``callable(n)`` told of every ``n`` clips finished (rank 0 / the parent process).

    Returns:
        The summary (every rank gets it).

    Raises:
        PrepareError: bad input folder, unwritable output, no usable video.
        FileExistsError: ``output`` holds a dataset (or an unfinished run with other settings) and not ``overwrite``.
        FileNotFoundError: missing tokenizer files.
    """
    workers = checks.check_int(workers, "workers", 1, 1024)
    rank, world, created = _distributed()
    try:
        return _prepare(cfg, workers, progress, on_progress, rank, world)
    finally:
        if created:  # an undestroyed gloo group can abort the process at exit
            import torch.distributed as dist

            dist.destroy_process_group()


def _prepare(cfg: PrepareConfig, workers: int, progress: bool, on_progress, rank: int, world: int) -> PrepareSummary:
    from tqdm import tqdm

    start_time = time.time()
    if world > 1 and workers > 1:
        raise PrepareError("under torchrun every rank is one worker: drop --workers (or run without torchrun)")
    status, resumed, created = None, True, None
    if rank == 0:
        try:
            plan, resumed, created = _setup(cfg)
            status = ("ok", resumed)
        except Exception as e:  # noqa: BLE001 -- re-raised on every rank below
            status = ("error", e)
    status = _share(status)
    if status[0] == "error":
        raise status[1]
    setup_done = time.time()
    if rank != 0:
        with open(os.path.join(cfg.output, WORK_DIR, PLAN_FILE)) as f:
            plan = json.load(f)
    done = done_units(os.path.join(cfg.output, WORK_DIR))
    _gather(None)  # barrier: nobody appends to a shard before every rank has read the journals
    pending = [u for u in range(len(plan["units"])) if u not in done]
    parts = _split_work(pending, world if world > 1 else max(1, min(workers, len(pending) or 1)))
    total = len(plan["clips"])
    initial = sum(plan["units"][u][1] for u in done)
    if world > 1:  # rank 0 sees only its own progress
        mine = sum(plan["units"][u][1] for u in parts[rank])
        bar = tqdm(
            total=mine,
            unit=" clips",
            desc=f"prepare-data rank 0/{world}",
            dynamic_ncols=True,
            disable=not progress or rank != 0,
            file=sys.stderr,
            smoothing=0.1,
        )
    else:
        bar = tqdm(
            total=total,
            initial=initial,
            unit=" clips",
            desc="prepare-data",
            dynamic_ncols=True,
            disable=not progress,
            file=sys.stderr,
            smoothing=0.1,
        )

    def advance(n: int) -> None:
        bar.update(n)
        if on_progress is not None:
            on_progress(n)

    error, stats = None, Stats()
    try:
        if world > 1:
            device = _device_for(cfg, int(os.environ.get("LOCAL_RANK", rank)))
            run_worker(
                cfg,
                plan,
                parts[rank],
                f"shard-{rank:03d}",
                device,
                on_progress=advance if rank == 0 else None,
                threads=worker_cores(int(os.environ.get("LOCAL_WORLD_SIZE", world))),
                stats=stats,
            )
        elif len(parts) > 1:
            _run_local_workers(cfg, parts, advance, stats)
        else:
            run_worker(cfg, plan, parts[0], "shard-000", _device_for(cfg, 0), on_progress=advance, stats=stats)
    except Exception as e:  # noqa: BLE001 -- every rank must reach the gather below, then all raise
        error = e
    finally:
        bar.close()
    gathered = _gather((None if error is None else _short(error), stats.as_dict()))
    errors = [e for e, _ in gathered if e is not None]
    stats = Stats()
    for _, s in gathered:  # busy seconds of every rank
        stats.add(s)
    failed = error is not None or errors
    if failed and rank == 0 and not resumed and not done_units(os.path.join(cfg.output, WORK_DIR)):
        _discard(cfg, created)  # a fresh run that committed nothing leaves nothing behind (an interrupt keeps it)
    if error is not None:
        raise error
    if errors:
        raise RuntimeError(f"prepare-data failed on another rank: {errors[0]}")
    summary, encode_done = None, time.time()
    if rank == 0:
        try:
            summary = merge_shards(cfg, plan)
            shutil.rmtree(os.path.join(cfg.output, WORK_DIR), ignore_errors=True)
            summary.resumed_units = len(done)
            summary.clips_this_run = total - initial
        except Exception as e:  # noqa: BLE001
            summary = e
    summary = _share(summary)
    if isinstance(summary, Exception):
        raise summary
    summary.seconds = time.time() - start_time
    summary.phases = {
        "setup": setup_done - start_time,
        "encode": encode_done - setup_done,
        "merge": start_time + summary.seconds - encode_done,
    }
    summary.stages = stats.as_dict()
    return summary
