"""Settings (``PrepareConfig``), errors (``PrepareError``), the run summary and the on-disk constants of
``prepare-data``, shared by its modules (with ``_short``, the one-line form of an exception they all report).

``prepare.py`` (planning and orchestration), ``encode.py`` (reading and encoding clips) and ``shards.py`` (shard
files and the merge) all need these; they live here, apart from any of the three, so none imports another in a
circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

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


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__
