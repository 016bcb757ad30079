"""The video content safety filter: SigLIP image embeddings of frames sampled at 2 fps, a small MLP over each, and
"unsafe" when any sampled frame is not classified as safe (cosmos-predict1
``auxiliary/guardrail/video_content_safety_filter/``: ``google/siglip-so400m-patch14-384`` embeddings, 1152-d, feed
a 7-class MLP, ``safety_filter.pt``; any unsafe frame means the video is not saved).

SigLIP's vision tower (the published SiglipVisionModel, whose pooled output is what ``SiglipModel.get_image_features``
returns) and transformers' ``SiglipImageProcessor`` pixels are re-implemented in ``siglip`` and read from the same
Hugging Face folder, a full SiglipModel checkpoint's text tower left out; transformers is not imported (why:
``siglip``'s docstring). Tests hold both to transformers' outputs.

NOT IN THE REFERENCE (from our reading of cosmos-predict1's guardrail code; check against the released file):
* the classifier's layout, ``network.layers`` = Linear(1152, 512), BatchNorm1d, ReLU, Linear(512, 256),
  BatchNorm1d, ReLU, Linear(256, 7), stored under a ``"model"`` key (a bare state dict is accepted too);
* the embeddings are L2-normalised before the classifier;
* the class order below; only "index 0 is the safe class" decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nemo_cosmos_ar.guardrails.siglip import SiglipPreprocess, load_siglip_vision

CLASS_NAMES: tuple[str, ...] = (
    "Safe",
    "Sexual_Content",
    "Violence",
    "Drugs",
    "Child_Abuse",
    "Hate_and_Harassment",
    "Self-Harm",
)
SAFE_CLASS = 0
SAMPLE_FPS = 2.0
# google/siglip-so400m-patch14-384's vision tower (its published config.json); used by the bench for real shapes.
SO400M_VISION = dict(
    hidden_size=1152,
    intermediate_size=4304,
    num_hidden_layers=27,
    num_attention_heads=16,
    image_size=384,
    patch_size=14,
)


class SafetyClassifier(nn.Module):
    """The MLP head. Attribute names mirror the released ``safety_filter.pt`` keys (``network.layers.N.*``)."""

    def __init__(self, input_size: int = 1152, num_classes: int = len(CLASS_NAMES)) -> None:
        super().__init__()
        self.network = nn.Module()
        self.network.layers = nn.Sequential(
            nn.Linear(input_size, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, num_classes),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.network.layers(embeddings)


@dataclass(frozen=True)
class FrameVerdict:
    index: int  # frame index in the video
    label: str
    probability: float  # of that label
    safe: bool


@dataclass(frozen=True)
class Verdict:
    """What the safety filter decided. ``safe`` is False when any sampled frame is classified as unsafe."""

    safe: bool
    frames: tuple[FrameVerdict, ...]

    @property
    def unsafe_frames(self) -> tuple[FrameVerdict, ...]:
        return tuple(f for f in self.frames if not f.safe)

    @property
    def message(self) -> str:
        """One line for the user."""
        if self.safe:
            return f"the video content safety filter passed the video ({len(self.frames)} frames checked)"
        bad = self.unsafe_frames
        labels = ", ".join(sorted({f.label for f in bad}))
        return (
            f"the video content safety filter flagged the generated video ({labels} in {len(bad)} of "
            f"{len(self.frames)} sampled frames, first at frame {bad[0].index}); it was not written"
        )


def sample_indices(num_frames: int, fps: float, sample_fps: float = SAMPLE_FPS) -> list[int]:
    """Frames checked: every ``int(fps / sample_fps)``-th from frame 0 (0, 12, 24 for 33 frames at 25 fps)."""
    step = max(1, int(fps / sample_fps))
    return list(range(0, num_frames, step))


def as_uint8_thwc(frames) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` as numpy, from numpy or torch."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"guardrails expect uint8 frames [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    return frames


class VideoSafetyFilter:
    """SigLIP vision tower + ``SafetyClassifier``, on one device. Build with ``load_safety_filter`` (released
    weights) or directly from modules (tests, the bench)."""

    def __init__(
        self,
        encoder: nn.Module,
        classifier: SafetyClassifier,
        processor,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.encoder = encoder.to(self.device, dtype).eval()
        self.classifier = classifier.to(self.device).eval()
        self.processor = processor

    @torch.no_grad()
    def embed(self, frames: np.ndarray) -> torch.Tensor:
        """L2-normalised float32 embeddings ``[N, D]`` of uint8 frames ``[N, H, W, 3]``."""
        pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"]
        pooled = self.encoder(pixel_values=pixels.to(self.device, self.dtype)).pooler_output.float()
        return pooled / pooled.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def probabilities(self, frames: np.ndarray) -> torch.Tensor:
        """Class probabilities ``[N, num_classes]`` (float32, on CPU)."""
        return torch.softmax(self.classifier(self.embed(frames)), dim=-1).cpu()

    def to(self, device: str | torch.device) -> VideoSafetyFilter:
        self.device = torch.device(device)
        self.encoder.to(self.device)
        self.classifier.to(self.device)
        return self


def check_video(frames, classifier: VideoSafetyFilter, fps: float = 25.0, batch_size: int = 8) -> Verdict:
    """Run the safety filter over ``frames`` (uint8 ``[T, H, W, 3]``, numpy or torch) sampled at 2 fps."""
    video = as_uint8_thwc(frames)
    ids = sample_indices(video.shape[0], fps)
    probs = torch.cat(
        [classifier.probabilities(video[ids[i : i + batch_size]]) for i in range(0, len(ids), batch_size)]
    )
    names = CLASS_NAMES if probs.shape[1] == len(CLASS_NAMES) else tuple(f"class_{i}" for i in range(probs.shape[1]))
    verdicts = []
    for idx, p in zip(ids, probs):
        k = int(p.argmax())
        verdicts.append(FrameVerdict(idx, names[k], float(p[k]), k == SAFE_CLASS))
    return Verdict(all(v.safe for v in verdicts), tuple(verdicts))


def load_safety_filter(
    classifier_path: str | Path,
    siglip_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> VideoSafetyFilter:
    """The released safety filter: ``safety_filter.pt`` (read with ``weights_only=True``) + the SigLIP folder (its
    vision tower and its preprocessing config). Safe to call on any thread."""
    from nemo_cosmos_ar.guardrails.weights import load_released_weights

    siglip_dir = Path(siglip_dir)
    encoder = load_siglip_vision(siglip_dir, device=device, dtype=dtype)
    processor = SiglipPreprocess.from_folder(siglip_dir, encoder.config.image_size)
    classifier = SafetyClassifier(input_size=encoder.config.hidden_size)
    load_released_weights(classifier, classifier_path, what="video safety classifier")
    return VideoSafetyFilter(encoder, classifier, processor, device=device, dtype=dtype)
