"""Settings (``PrepareConfig``), errors (``PrepareError``), the run summary and the on-disk constants of
``prepare-data``, shared by its modules (with ``_short``, the one-line form of an exception they all report).

``prepare.py`` (planning and orchestration), ``encode.py`` (reading and encoding clips) and ``shards.py`` (shard
files and the merge) all need these; they live here, apart from any of the three, so none imports another in a
circle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from nemo_cosmos_ar import checks
from nemo_cosmos_ar.data.windows import WindowSpec
from nemo_cosmos_ar.model.config import latent_shape_for

FORMAT = "nemo_cosmos_ar.clip_tokens"
FORMAT_VERSION = 1
DEFAULT_TOKENIZER = "checkpoints/Cosmos-Tokenize1-DV8x16x16-720p"
WORK_DIR = "_work"
PLAN_FILE = "plan.json"
SPLITS = ("train", "val")
TOKEN_DTYPE = np.uint16  # 64,000 codes fit; Megatron's indexed dataset stores the dtype in the .idx


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
        backend: tokenizer backend, ``"eager"``, ``"fast"``, ``"jit"`` or ``"auto"`` (resolved here: see
            ``tokenizer.backends.resolve_backend``).
        device: ``"cuda"``/``"cpu"``; None picks CUDA when there is one (each worker its own GPU).
        dtype: ``"bfloat16"``/``"float32"``; None = bf16 on CUDA (as cosmos-predict1), fp32 on CPU.
        seed: seed of the train/val split.
        overwrite: delete a previous dataset or unfinished run in ``output`` first.
        prefetch: units decoded ahead of the encoder per decoding thread or process (0: decode, resize, encode and
            write one after the other). Does not change the result.
        decode_workers: decode processes per worker (0: one decoding thread inside the worker). Does not change the
            result.
        resize_device: ``"cpu"`` resizes + crops where the frames are decoded; None on the encoding device (the GPU
            when there is one). Part of the result: bicubic resampling rounds differently on CPU and GPU.
    """

    videos: str
    output: str
    resolution: tuple[int, int] = (384, 640)
    windows: WindowSpec = field(default_factory=WindowSpec)
    tokenizer: str = DEFAULT_TOKENIZER
    val_fraction: float = 0.0
    dataset: str | None = None
    batch_size: int = 8
    backend: str = "auto"
    device: str | None = None
    dtype: str | None = None
    seed: int = 0
    overwrite: bool = False
    prefetch: int = 2
    decode_workers: int = 0
    resize_device: str | None = None

    def __post_init__(self) -> None:
        # Types and ranges of every field, with the option's name, before anything reads a file (issue 18).
        if not isinstance(self.resolution, (tuple, list)) or len(self.resolution) != 2:
            raise PrepareError(f"resolution must be (height, width), got {self.resolution!r}")
        self.resolution = checks.check_resolution(*self.resolution)
        for name in ("num_frames", "window_stride", "frame_stride"):
            checks.check_int(getattr(self.windows, name), f"--{name.replace('_', '-')}", 1, 100_000)
        self.latent_shape = latent_shape_for(self.windows.num_frames, *self.resolution)  # validates 1+8k
        self.val_fraction = checks.check_float(self.val_fraction, "--val-fraction", 0.0, 1.0, hi_open=True)
        self.batch_size = checks.check_int(self.batch_size, "--batch-size", 1, 4096)
        self.seed = checks.check_int(self.seed, "seed", 0)
        checks.check_choice(self.backend, "--backend", ("eager", "fast", "jit", "auto"))
        if self.dtype is not None:
            checks.check_choice(self.dtype, "dtype", ("bfloat16", "float32"))
        self.device = checks.check_device(self.device)
        self.prefetch = checks.check_int(self.prefetch, "--prefetch", 0, 64)
        self.decode_workers = checks.check_int(self.decode_workers, "--decode-workers", 0, 64)
        if self.resize_device is not None:
            checks.check_choice(self.resize_device, "--resize-device", ("cpu",))
            if not self.device_type().startswith("cuda"):
                self.resize_device = None  # everything is on the CPU already: the same bytes either way
        if self.backend == "auto":
            from nemo_cosmos_ar.tokenizer.backends import resolve_backend

            self.backend = resolve_backend("auto", self.device_type().split(":")[0])
        for name in ("videos", "output", "tokenizer"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise PrepareError(f"--{name} must be a path, got {getattr(self, name)!r}")

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
    stages: dict[str, float] = field(default_factory=dict)  # pipeline.Stats: busy seconds per stage, all workers

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
        lines.append(
            f"time         {self.seconds:.1f} s ({self.clips_this_run:,} clips encoded, {rate:.2f} clips/s{resumed})"
        )
        if self.phases:  # where the time went: planning and tokenizer loading are fixed costs, encode scales
            lines.append("phases       " + ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items()))
        if self.stages:  # overlapping stages: what each took, and whether the encoder waited for frames
            busy = ", ".join(f"{k} {self.stages.get(k, 0.0):.1f} s" for k in ("decode", "resize", "encode", "write"))
            lines.append(
                f"stages       {rate:.2f} clips/s; {busy}; encoder waited {self.stages.get('wait', 0.0):.1f} s "
                f"for frames and spent {self.stages.get('other', 0.0):.1f} s elsewhere in its loop "
                "(seconds summed over workers)"
            )
            lines.append(
                f"startup      tokenizer load {self.stages.get('startup', 0.0):.1f} s, first-call compile "
                f"{self.stages.get('compile', 0.0):.1f} s (part of encode); prefetching decodes meanwhile"
            )
            slots = int(self.stages.get("slots", 0))
            if slots:  # decode processes' shared frame buffers (data/frame_pool.py)
                size = self.stages.get("slot_bytes", 0.0)
                lines.append(
                    f"frame slots  {slots} of {size / slots / 1e6:.1f} MB ({size / 1e9:.2f} GB, page-locked on a GPU); "
                    f"decode processes waited {self.stages.get('slot_wait', 0.0):.1f} s for one; "
                    f"{int(self.stages.get('unpooled', 0))} units did not fit one"
                )
        return "\n".join(lines)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__
