"""A folder of videos -> a clip-token dataset (``train``/``val`` Megatron indexed datasets + ``metadata.json``).

Steps (reference §4): find the videos, probe their frame counts, cut every full window the way cosmos-predict1's
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
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from nemo_cosmos_ar.data.dataset import METADATA
from nemo_cosmos_ar.data.windows import WindowSpec, frame_indices, window_starts
from nemo_cosmos_ar.model.config import latent_shape_for

FORMAT = "nemo_cosmos_ar.clip_tokens"
FORMAT_VERSION = 1
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
DEFAULT_TOKENIZER = "checkpoints/Cosmos-Tokenize1-DV8x16x16-720p"
WORK_DIR = "_work"
PLAN_FILE = "plan.json"
SPLITS = ("train", "val")
TOKEN_DTYPE = np.uint16  # 64,000 codes fit; Megatron's indexed dataset stores the dtype in the .idx
OUTPUT_FILES = ("train.bin", "train.idx", "val.bin", "val.idx", METADATA)


class PrepareError(ValueError):
    """A user error (bad folder, unwritable output, nothing to do): the CLI prints it without a traceback."""


@dataclass(kw_only=True)
class PrepareConfig:
    """Arguments of ``prepare_dataset``.

    Args:
        videos: folder searched recursively for video files.
        output: dataset folder to write (created if needed).
        resolution: clip (height, width), multiples of 16.
        windows: frames per clip and strides (``WindowSpec``).
        tokenizer: tokenizer folder (``encoder.jit``/``decoder.jit``, the released layout).
        val_fraction: fraction of the *videos* held out as the ``val`` split.
        dataset: registry name recorded in the metadata (informational).
        batch_size: clips encoded per batch; fixes the units, so a resumed run must use the same value.
        backend: ``"eager"`` or ``"jit"`` tokenizer backend.
        device: ``"cuda"``/``"cpu"``; None picks CUDA when there is one (each worker its own GPU).
        dtype: ``"bfloat16"``/``"float32"``; None = bf16 on CUDA (as cosmos-predict1), fp32 on CPU.
        seed: seed of the train/val split.
        overwrite: delete a previous dataset or unfinished run in ``output`` first.
    """

    videos: str
    output: str
    resolution: tuple[int, int] = (384, 640)
    windows: WindowSpec = field(default_factory=WindowSpec)
    tokenizer: str = DEFAULT_TOKENIZER
    val_fraction: float = 0.0
    dataset: str | None = None
    batch_size: int = 8
    backend: str = "eager"
    device: str | None = None
    dtype: str | None = None
    seed: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.resolution = tuple(int(x) for x in self.resolution)
        self.latent_shape = latent_shape_for(self.windows.num_frames, *self.resolution)  # validates
        if not 0.0 <= self.val_fraction < 1.0:
            raise PrepareError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.batch_size < 1:
            raise PrepareError(f"batch_size must be >= 1, got {self.batch_size}")

    def device_type(self) -> str:
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")

    def torch_dtype(self) -> torch.dtype:
        name = self.dtype or ("bfloat16" if self.device_type().startswith("cuda") else "float32")
        return getattr(torch, name)


@dataclass
class PrepareSummary:
    """What a run did; ``format()`` gives the end-of-run report."""

    output: str
    files_found: int = 0
    videos_read: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    clips: dict[str, int] = field(default_factory=dict)  # split -> clips written
    failed_clips: int = 0
    tokens: int = 0
    clips_this_run: int = 0
    seconds: float = 0.0
    resumed_units: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds (setup, encode, merge)

    def format(self) -> str:
        lines = [
            f"dataset      {self.output}",
            f"videos read  {self.videos_read} of {self.files_found} files",
            f"skipped      {len(self.skipped)}" + ("" if self.skipped else " (none)"),
        ]
        if len(self.skipped) <= 20:
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        else:  # by kind of reason; every file and reason is in metadata.json
            kinds: dict[str, list[str]] = {}
            for path, reason in self.skipped:
                kinds.setdefault(reason.split(" (")[0], []).append(path)
            lines += [f"  {len(p)} {k}: {', '.join(p[:3])}{', ...' if len(p) > 3 else ''}" for k, p in kinds.items()]
            lines.append("  (all of them, with reasons, in metadata.json)")
        clips = ", ".join(f"{k} {v:,}" for k, v in self.clips.items())
        lines += [f"clips        {sum(self.clips.values()):,} ({clips})", f"tokens       {self.tokens:,}"]
        if self.failed_clips:
            lines.append(f"dropped      {self.failed_clips} clips whose frames failed to decode")
        rate = self.clips_this_run / self.seconds if self.seconds > 0 else 0.0
        resumed = f"; resumed, {self.resumed_units} units already done" if self.resumed_units else ""
        lines.append(f"time         {self.seconds:.1f} s ({self.clips_this_run:,} clips encoded, "
                     f"{rate:.2f} clips/s{resumed})")  # fmt: skip
        if self.phases:  # where the time went: planning and tokenizer loading are fixed costs, encode scales
            lines.append("phases       " + ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items()))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Planning: files -> videos -> clips -> units
# ---------------------------------------------------------------------------------------------------------------


def find_video_files(root: str, exclude: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Relative paths of files under ``root`` with a video extension (sorted) and ``(path, reason)`` for the
    other files. Hidden files and folders and the ``exclude`` folder (the output) are ignored."""
    videos, others = [], []
    exclude = os.path.realpath(exclude) if exclude else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and os.path.realpath(os.path.join(dirpath, d)) != exclude)  # fmt: skip
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
    return {"path": rel, "frames": int(info.num_frames), "fps": float(info.fps), "height": int(info.height),
            "width": int(info.width), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}, None  # fmt: skip


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


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
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
    return "sha256:" + h.hexdigest()


def _fingerprint(cfg: PrepareConfig, checksum: str) -> dict:
    """Everything the bytes of the result depend on; a resumed run must match it."""
    return {
        "videos": os.path.abspath(cfg.videos), "resolution": list(cfg.resolution), "windows": asdict(cfg.windows),
        "tokenizer_checksum": checksum, "val_fraction": cfg.val_fraction, "seed": cfg.seed,
        "batch_size": cfg.batch_size, "backend": cfg.backend, "device_type": cfg.device_type().split(":")[0],
        "dtype": "traced" if cfg.backend == "jit" else str(cfg.torch_dtype()).replace("torch.", ""),
        "dataset": cfg.dataset,
    }  # fmt: skip


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
        raise PrepareError(f"none of the {files_found} files in {cfg.videos} gives a {cfg.windows.span}-frame "
                           f"clip ({why})")  # fmt: skip
    held_out = val_videos(len(videos), cfg.val_fraction, cfg.seed)
    clips = []  # [video index, first frame, split index], ordered by (path, first frame)
    for i, v in enumerate(videos):
        v["split"] = SPLITS[1] if i in held_out else SPLITS[0]
        clips += [[i, s, int(i in held_out)] for s in window_starts(v["frames"], cfg.windows)]
    units = [[a, min(cfg.batch_size, len(clips) - a)] for a in range(0, len(clips), cfg.batch_size)]
    return {"fingerprint": _fingerprint(cfg, checksum), "files_found": files_found, "videos": videos,
            "skipped": skipped, "clips": clips, "units": units}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Shards: append-only token rows + a journal of committed units
# ---------------------------------------------------------------------------------------------------------------


def _read_journal(path: str) -> list[dict]:
    """Complete lines of a shard journal; a torn last line (killed mid-write) is ignored."""
    if not os.path.isfile(path):
        return []
    entries = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            entries.append(json.loads(line))
    return entries


def repair_shard(work: str, name: str, clip_len: int) -> list[dict]:
    """Cut shard ``name`` back to its committed units (drops a torn tail of either file); returns its journal."""
    journal_path, tokens_path = os.path.join(work, name + ".jsonl"), os.path.join(work, name + ".tokens")
    entries = _read_journal(journal_path)
    row_bytes = clip_len * np.dtype(TOKEN_DTYPE).itemsize
    have = os.path.getsize(tokens_path) // row_bytes if os.path.isfile(tokens_path) else 0
    keep, rows = [], 0
    for e in entries:  # tokens are synced before their journal line, so this only trims after a disk failure
        if rows + len(e["clips"]) > have:
            break
        keep.append(e)
        rows += len(e["clips"])
    with open(journal_path, "wb") as f:
        f.writelines((json.dumps(e) + "\n").encode() for e in keep)
    with open(tokens_path, "ab") as f:
        f.truncate(rows * row_bytes)
    return keep


def _shard_names(work: str) -> list[str]:
    return sorted(n[: -len(".jsonl")] for n in os.listdir(work) if n.startswith("shard-") and n.endswith(".jsonl"))


def done_units(work: str) -> set[int]:
    return {e["unit"] for name in _shard_names(work) for e in _read_journal(os.path.join(work, name + ".jsonl"))}


class ShardWriter:
    """Appends finished units to ``<work>/<name>.tokens`` / ``.jsonl`` (call ``repair_shard`` before opening)."""

    def __init__(self, work: str, name: str) -> None:
        self._tokens = open(os.path.join(work, name + ".tokens"), "ab")
        self._journal = open(os.path.join(work, name + ".jsonl"), "ab")

    def commit(self, unit: int, clip_ids: list[int], rows: np.ndarray, failed: list[tuple[int, str]]) -> None:
        self._tokens.write(np.ascontiguousarray(rows, dtype=TOKEN_DTYPE).tobytes())
        self._tokens.flush()
        os.fsync(self._tokens.fileno())
        line = {"unit": unit, "clips": clip_ids, "failed": [list(f) for f in failed]}
        self._journal.write((json.dumps(line) + "\n").encode())
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def close(self) -> None:
        self._tokens.close()
        self._journal.close()


# ---------------------------------------------------------------------------------------------------------------
# Reading and encoding
# ---------------------------------------------------------------------------------------------------------------


class ClipReader:
    """Reads the clips of a unit as uint8 ``[B, T, H, W, 3]`` at the target size, on ``device``.

    The current video stays open (``video_io.VideoFile``) and its windows are read in increasing order, so the
    decoder moves forward through the file instead of re-decoding from a keyframe for every window. Resized frames
    of the current window are cached, so overlapping windows (stride 1: 33 windows share each frame) decode and
    resize every frame once. A video that fails to decode fails its clips (recorded, not fatal).
    """

    def __init__(self, root: str, plan: dict, resolution: tuple[int, int], spec: WindowSpec, device,
                 decode_threads: int = 2) -> None:  # fmt: skip
        self.root, self.plan, self.resolution, self.spec, self.device = root, plan, resolution, spec, device
        self.decode_threads = decode_threads
        self._video: int | None = None
        self._file = None
        self._cache: dict[int, torch.Tensor] = {}
        self._broken: dict[int, str] = {}

    def _open(self, v: int | None) -> None:
        if self._file is not None:
            self._file.close()
        self._video, self._file, self._cache = v, None, {}
        if v is None:
            return
        from nemo_cosmos_ar import video_io

        info = self.plan["videos"][v]
        path = os.path.join(self.root, info["path"])
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) != (info["bytes"], info["mtime_ns"]):
            raise PrepareError(f"{path} changed after this run was planned; rerun with --overwrite")
        self._file = video_io.VideoFile(path, threads=self.decode_threads)

    def _frames(self, v: int, ids: list[int]) -> list[torch.Tensor]:
        from nemo_cosmos_ar import video_io

        if self._video != v:
            self._open(v)
        lo = min(ids)
        self._cache = {i: f for i, f in self._cache.items() if i >= lo}  # windows only move forward
        missing = sorted(set(ids) - set(self._cache))
        if missing:
            raw = self._file.frames(missing)
            self._cache.update(zip(missing, video_io.resize_and_crop(raw.to(self.device), *self.resolution)))
        return [self._cache[i] for i in ids]

    def close(self) -> None:
        self._open(None)

    def load(self, unit: int) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
        """``(clip ids read, frames [B, T, H, W, 3] uint8 or None, [(clip id, reason)] failed)``."""
        first, count = self.plan["units"][unit]
        ok, clips, failed = [], [], []
        for cid in range(first, first + count):
            v, start, _ = self.plan["clips"][cid]
            if v in self._broken:
                failed.append((cid, self._broken[v]))
                continue
            try:
                clips.append(torch.stack(self._frames(v, frame_indices(start, self.spec))))
                ok.append(cid)
            except PrepareError:
                raise
            except Exception as e:  # noqa: BLE001 -- a bad video loses its clips, the run goes on
                self._broken[v] = f"decode failed ({_short(e)})"
                self._open(None)
                failed.append((cid, self._broken[v]))
        return ok, (torch.stack(clips) if clips else None), failed


def encode_clips(tokenizer, frames: torch.Tensor, latent_shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 ``[B, T, H, W, 3]`` -> token rows ``[B, T'·H'·W']`` uint16 (row-major grid, W fastest)."""
    from nemo_cosmos_ar import video_io

    b, t, h, w, _ = frames.shape
    video = video_io.to_model_range(frames.reshape(b * t, h, w, 3), tokenizer.dtype)  # [3, B·T, H, W]
    video = video.reshape(3, b, t, h, w).transpose(0, 1)
    ids = tokenizer.encode(video)
    if tuple(ids.shape[1:]) != tuple(latent_shape):
        raise PrepareError(f"the tokenizer turned {t}x{h}x{w} clips into a {tuple(ids.shape[1:])} grid, expected "
                           f"{tuple(latent_shape)}: is --tokenizer a DV8x16x16 (8x time, 16x space) tokenizer?")
    return ids.reshape(b, -1).cpu().numpy().astype(TOKEN_DTYPE)


def decode_threads(processes: int = 1) -> int:
    """Decoder threads per worker: the machine's cores shared by the workers on it, at most 8 (H.264 frame
    threading gains little beyond that, and each thread holds frames in flight)."""
    return max(1, min(8, (os.cpu_count() or 1) // max(1, processes)))


def run_worker(cfg: PrepareConfig, plan: dict, units: list[int], shard: str, device: str,
               on_progress=None, threads: int | None = None) -> int:  # fmt: skip
    """Encode ``units`` and append them to ``shard``; returns the number of clips handled. ``threads``: video
    decoder threads (default: all cores, at most 8)."""
    from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

    if not units:
        return 0
    work = os.path.join(cfg.output, WORK_DIR)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        # Same unit -> same batch -> same kernels: keeps a resumed or re-sharded run byte-identical.
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    tokenizer = load_tokenizer(
        cfg.tokenizer, backend=cfg.backend, device=device, dtype=None if cfg.backend == "jit" else cfg.torch_dtype(),
        pixel_chunk_duration=None, max_enc_batch_size=cfg.batch_size,
    )  # fmt: skip
    if tokenizer.codebook_size > np.iinfo(TOKEN_DTYPE).max + 1:
        raise PrepareError(f"codebook of {tokenizer.codebook_size} codes does not fit {np.dtype(TOKEN_DTYPE).name}")
    reader = ClipReader(cfg.videos, plan, cfg.resolution, cfg.windows, device,
                        decode_threads=threads or decode_threads())
    writer = ShardWriter(work, shard)
    handled = 0
    try:
        with ThreadPoolExecutor(1) as prefetch:  # decode + resize the next unit while this one encodes
            pending = prefetch.submit(reader.load, units[0])
            for k, unit in enumerate(units):
                clip_ids, frames, failed = pending.result()
                if k + 1 < len(units):
                    pending = prefetch.submit(reader.load, units[k + 1])
                rows = (encode_clips(tokenizer, frames, cfg.latent_shape) if frames is not None
                        else np.zeros((0, 0), TOKEN_DTYPE))  # fmt: skip
                writer.commit(unit, clip_ids, rows, failed)
                handled += len(clip_ids) + len(failed)
                if on_progress is not None:
                    on_progress(len(clip_ids) + len(failed))
    finally:
        reader.close()
        writer.close()
    return handled


# ---------------------------------------------------------------------------------------------------------------
# Merging shards into the dataset
# ---------------------------------------------------------------------------------------------------------------


def _format_json(obj, indent: str = "") -> str:
    """JSON with one line per list element and short lists inline (a readable metadata file of any size)."""
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {_format_json(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(obj, list) and obj and any(isinstance(x, (dict, list)) for x in obj):
        return "[\n" + ",\n".join(inner + json.dumps(x) for x in obj) + f"\n{indent}]"
    return json.dumps(obj)


def merge_shards(cfg: PrepareConfig, plan: dict) -> PrepareSummary:
    """Write ``train``/``val`` ``.bin``/``.idx`` and ``metadata.json`` from the shards (all units must be done)."""
    from nemo_cosmos_ar.data.indexed import IndexedRowsWriter

    work = os.path.join(cfg.output, WORK_DIR)
    clip_len = int(np.prod(cfg.latent_shape))
    where: dict[int, tuple[str, int]] = {}
    failed: dict[int, str] = {}
    units_done = set()
    for name in _shard_names(work):
        row = 0
        for e in _read_journal(os.path.join(work, name + ".jsonl")):
            units_done.add(e["unit"])
            for cid in e["clips"]:
                where[cid] = (name, row)
                row += 1
            failed.update((int(c), r) for c, r in e["failed"])
    missing = len(plan["units"]) - len(units_done)
    if missing:
        raise RuntimeError(f"{missing} of {len(plan['units'])} units are not encoded yet; rerun to finish")
    tokens = {}
    for name in _shard_names(work):
        path = os.path.join(work, name + ".tokens")
        if os.path.getsize(path):
            tokens[name] = np.memmap(path, dtype=TOKEN_DTYPE, mode="r").reshape(-1, clip_len)
    videos = plan["videos"]
    samples: dict[str, list[dict]] = {s: [] for s in SPLITS}
    stride = cfg.windows.frame_stride
    for s, split in enumerate(SPLITS):
        writer = IndexedRowsWriter(os.path.join(cfg.output, split), TOKEN_DTYPE, clip_len)
        for cid, (v, start, sp) in enumerate(plan["clips"]):
            if sp != s or cid in failed:
                continue
            name, row = where[cid]
            writer.add(tokens[name][row])
            samples[split].append({"video": videos[v]["path"], "first_frame": start, "frame_stride": stride})
        writer.finalize()
    broken = {}  # videos none (or only some) of whose clips decoded
    for cid, reason in failed.items():
        broken.setdefault(plan["clips"][cid][0], reason)
    fully_broken = {v for v in broken if not any(plan["clips"][c][0] == v for c in where)}
    skipped = sorted(list(map(tuple, plan["skipped"])) + [(videos[v]["path"], broken[v]) for v in sorted(broken)])
    fp = plan["fingerprint"]
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "dataset": cfg.dataset,
        "latent_shape": list(cfg.latent_shape), "tokens_per_clip": clip_len, "dtype": np.dtype(TOKEN_DTYPE).name,
        "resolution": list(cfg.resolution), "num_frames": cfg.windows.num_frames,
        "window_stride": cfg.windows.window_stride, "frame_stride": cfg.windows.frame_stride,
        "tokenizer": {"name": os.path.basename(os.path.normpath(cfg.tokenizer)),
                      "path": os.path.abspath(cfg.tokenizer), "checksum": fp["tokenizer_checksum"],
                      "backend": fp["backend"], "dtype": fp["dtype"], "device_type": fp["device_type"]},
        "source": {"videos": fp["videos"], "files_found": plan["files_found"],
                   "videos_used": len(videos) - len(fully_broken),
                   "skipped": [{"path": p, "reason": r} for p, r in skipped]},
        "val_fraction": cfg.val_fraction, "split_seed": cfg.seed,
        "splits": {s: {"clips": len(samples[s]), "tokens": len(samples[s]) * clip_len,
                       "videos": len({x["video"] for x in samples[s]})} for s in SPLITS},
        "videos": [{k: v[k] for k in ("path", "frames", "fps", "height", "width", "split")} for v in videos],
        "samples": samples,
    }  # fmt: skip
    tmp = os.path.join(cfg.output, f".{METADATA}.tmp")
    with open(tmp, "w") as f:
        f.write(_format_json(meta) + "\n")
    os.replace(tmp, os.path.join(cfg.output, METADATA))  # last: its presence marks a complete dataset
    return PrepareSummary(
        output=cfg.output, files_found=plan["files_found"], videos_read=len(videos) - len(fully_broken),
        skipped=skipped, clips={s: len(samples[s]) for s in SPLITS}, failed_clips=len(failed),
        tokens=sum(len(x) for x in samples.values()) * clip_len,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Orchestration: output folder, plan, workers (in-process, local processes or torchrun ranks), merge
# ---------------------------------------------------------------------------------------------------------------


def _setup(cfg: PrepareConfig) -> tuple[dict, bool]:
    """Check the inputs, claim the output folder, and load (resume) or make the plan. Returns (plan, resumed)."""
    if not os.path.isdir(cfg.videos):
        raise PrepareError(f"--videos {cfg.videos} is not a folder")
    try:
        os.makedirs(cfg.output, exist_ok=True)
        probe = os.path.join(cfg.output, f".write_test.{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise PrepareError(f"cannot write to the output folder {cfg.output}: {e.strerror or e}") from e
    work = os.path.join(cfg.output, WORK_DIR)
    plan_path = os.path.join(work, PLAN_FILE)
    if cfg.overwrite:
        shutil.rmtree(work, ignore_errors=True)
        for name in OUTPUT_FILES:
            if os.path.exists(os.path.join(cfg.output, name)):
                os.remove(os.path.join(cfg.output, name))
    checksum = tokenizer_checksum(cfg.tokenizer)
    if os.path.isfile(plan_path):
        with open(plan_path) as f:
            plan = json.load(f)
        want = _fingerprint(cfg, checksum)
        diff = {k: (plan["fingerprint"].get(k), v) for k, v in want.items() if plan["fingerprint"].get(k) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise FileExistsError(f"{cfg.output} holds an unfinished run with other settings ({changes}); "
                                  "rerun with the same settings to resume it, or pass --overwrite to start over")
        for name in _shard_names(work):
            repair_shard(work, name, int(np.prod(cfg.latent_shape)))
        return plan, True
    if any(os.path.exists(os.path.join(cfg.output, n)) for n in OUTPUT_FILES):
        raise FileExistsError(f"{cfg.output} already holds a dataset; pass --overwrite to replace it")
    plan = make_plan(cfg, checksum)
    os.makedirs(work, exist_ok=True)
    tmp = plan_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(plan, f)
    os.replace(tmp, plan_path)
    return plan, False


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


def _child(cfg: PrepareConfig, units: list[int], shard: str, device: str, threads: int, queue) -> None:
    """Entry point of a local worker process (``workers > 1``)."""
    import traceback

    try:
        torch.set_num_threads(threads)
        with open(os.path.join(cfg.output, WORK_DIR, PLAN_FILE)) as f:
            plan = json.load(f)
        run_worker(cfg, plan, units, shard, device, on_progress=lambda n: queue.put(("progress", n)),
                   threads=min(8, threads))
        queue.put(("done", shard))
    except BaseException as e:  # noqa: BLE001 -- reported to the parent, which raises
        user_error = e if isinstance(e, (PrepareError, FileNotFoundError)) else None
        queue.put(("error", f"{shard}: {_short(e)}\n{traceback.format_exc()}", user_error))


def _run_local_workers(cfg: PrepareConfig, parts: list[list[int]], advance) -> None:
    import queue as queue_mod

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // len(parts))
    procs = [ctx.Process(target=_child, args=(cfg, units, f"shard-{w:03d}", _device_for(cfg, w), threads, queue),
                         daemon=True) for w, units in enumerate(parts)]  # fmt: skip
    for p in procs:
        p.start()
    finished, error = 0, None
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
            else:
                error = msg[1:]
    finally:
        for p in procs:
            if error is not None and p.is_alive():
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
    status = None
    if rank == 0:
        try:
            plan, resumed = _setup(cfg)
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
        bar = tqdm(total=mine, unit=" clips", desc=f"prepare-data rank 0/{world}", dynamic_ncols=True,
                   disable=not progress or rank != 0, file=sys.stderr, smoothing=0.1)  # fmt: skip
    else:
        bar = tqdm(total=total, initial=initial, unit=" clips", desc="prepare-data", dynamic_ncols=True,
                   disable=not progress, file=sys.stderr, smoothing=0.1)  # fmt: skip

    def advance(n: int) -> None:
        bar.update(n)
        if on_progress is not None:
            on_progress(n)

    error = None
    try:
        if world > 1:
            device = _device_for(cfg, int(os.environ.get("LOCAL_RANK", rank)))
            run_worker(cfg, plan, parts[rank], f"shard-{rank:03d}", device, on_progress=advance if rank == 0 else None,
                       threads=decode_threads(int(os.environ.get("LOCAL_WORLD_SIZE", world))))
        elif len(parts) > 1:
            _run_local_workers(cfg, parts, advance)
        else:
            run_worker(cfg, plan, parts[0], "shard-000", _device_for(cfg, 0), on_progress=advance)
    except Exception as e:  # noqa: BLE001 -- every rank must reach the gather below, then all raise
        error = e
    finally:
        bar.close()
    errors = [e for e in _gather(None if error is None else _short(error)) if e is not None]
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
    summary.phases = {"setup": setup_done - start_time, "encode": encode_done - setup_done,
                      "merge": start_time + summary.seconds - encode_done}  # fmt: skip
    return summary
