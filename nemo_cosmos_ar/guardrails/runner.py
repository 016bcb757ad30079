"""Both video guardrails behind one object, with cosmos-predict1's offload semantics
(``utils/base_world_generation_pipeline.py``: offload means delete the module and free its memory after use, then
reload it from disk when next needed; not a move to CPU).

Integration in ``cosmos-ar generate`` (construct before generating so missing weights fail fast)::

    guard = None if args.disable_guardrail else VideoGuardrails.from_checkpoint_dir(
        args.checkpoint_dir, device=device, offload=args.offload_guardrail)
    ...
    guard.start_loading()                         # optional: both models load on a thread meanwhile
    ...
    guard.load(); guard.warm_up(33, 640, 1024)    # waits for that load; first-call costs paid ahead
    verdict, frames = guard(frames, fps=25)      # frames: uint8 [T, H, W, 3]; None when unsafe
    if frames is None: print(f"cosmos-ar generate: {verdict.message}", file=sys.stderr); return 1
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from nemo_cosmos_ar.guardrails.face_blur import FaceDetector, blur_faces, load_face_detector
from nemo_cosmos_ar.guardrails.paths import find_guardrail_files
from nemo_cosmos_ar.guardrails.safety import Verdict, VideoSafetyFilter, check_video, load_safety_filter
from nemo_cosmos_ar.runtime import Background, free_memory


class GuardrailResult(NamedTuple):
    verdict: Verdict
    frames: object  # the face-blurred frames (same type as the input), or None when the video is unsafe


class VideoGuardrails:
    """The safety filter, then (only for a safe video) the face blur.

    Args:
        load_safety / load_detector: build the models (from disk for the released weights; tests pass tiny ones).
        device: where the models run (for freeing memory on offload).
        offload: load each model right before use and delete it right after, as ``--offload_guardrail_models``.
    """

    def __init__(
        self,
        load_safety: Callable[[], VideoSafetyFilter],
        load_detector: Callable[[], FaceDetector],
        *,
        device: str | torch.device = "cpu",
        offload: bool = False,
    ) -> None:
        self._load_safety, self._load_detector = load_safety, load_detector
        self.device = torch.device(device)
        self.offload = offload
        self.safety: VideoSafetyFilter | None = None
        self.detector: FaceDetector | None = None
        self._loader: Background | None = None  # start_loading's thread, until waited for

    @classmethod
    def from_checkpoint_dir(
        cls,
        checkpoint_dir: str | Path = "checkpoints",
        *,
        device: str | torch.device | None = None,
        offload: bool = False,
        dtype: torch.dtype = torch.float32,
        batch_size: int = 8,
    ) -> VideoGuardrails:
        """Guardrails from the released weights under ``checkpoint_dir`` (see ``paths``). The files are located now
        (FileNotFoundError with one line if absent); the models load on first use."""
        files = find_guardrail_files(checkpoint_dir)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(
            lambda: load_safety_filter(files.safety_filter, files.siglip_dir, device=device, dtype=dtype),
            lambda: load_face_detector(files.face_detector, device=device, batch_size=batch_size),
            device=device,
            offload=offload,
        )

    def start_loading(self) -> None:
        """Build both models on a thread (``runtime.Background``: copies on a side stream), so that the load
        overlaps whatever the caller loads meanwhile. ``load`` and every use wait for it and raise its error.
        Nothing when offloading (each use loads)."""
        if self.offload or self._loader is not None or (self.safety is not None and self.detector is not None):
            return
        self._loader = Background(
            lambda: (self._load_safety(), self._load_detector()), self.device, "cosmos-ar-guardrails"
        )

    def _wait(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            self.safety, self.detector = loader.result()  # its error is raised here, once

    def _safety(self) -> VideoSafetyFilter:
        self._wait()
        if self.safety is None:
            self.safety = self._load_safety()
        return self.safety

    def _detector(self) -> FaceDetector:
        self._wait()
        if self.detector is None:
            self.detector = self._load_detector()
        return self.detector

    def load(self) -> None:
        """Build both models now, or wait for ``start_loading``'s thread (when not offloading: up front, so that a
        bad weights file fails before generating)."""
        self._safety()
        self._detector()

    def warm_up(self, num_frames: int, height: int, width: int, fps: float = 25.0) -> None:
        """Run each model once at the shapes a ``num_frames`` x ``height`` x ``width`` video gives it, on black
        frames, and drop the results: the first real video then does not pay for loading kernels and choosing
        convolution algorithms, per shape (the face detector sees a full batch and the remainder). Nothing when
        offloading: the models are not resident."""
        if self.offload:
            return
        black = np.zeros((num_frames, height, width, 3), np.uint8)
        check_video(black, self._safety(), fps=fps)
        det = self._detector()
        for n in sorted({min(det.batch_size, num_frames), num_frames % det.batch_size} - {0}):
            det.detect(black[:n])

    def check_video(self, frames, fps: float = 25.0) -> Verdict:
        try:
            return check_video(frames, self._safety(), fps=fps)
        finally:
            if self.offload:
                self.safety = None
                free_memory(self.device)

    def blur_faces(self, frames):
        try:
            return blur_faces(frames, self._detector())
        finally:
            if self.offload:
                self.detector = None
                free_memory(self.device)

    def __call__(self, frames, fps: float = 25.0) -> GuardrailResult:
        """Safety filter, then face blur. An unsafe video gets ``frames=None`` (not blurred, not to be written)."""
        verdict = self.check_video(frames, fps=fps)
        return GuardrailResult(verdict, self.blur_faces(frames) if verdict.safe else None)

    def release(self) -> None:
        """Drop both models now (e.g. before the next generation when not offloading)."""
        self._wait()
        self.safety = self.detector = None
        free_memory(self.device)
