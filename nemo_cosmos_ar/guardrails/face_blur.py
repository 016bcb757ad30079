"""The face-blur post-processor: RetinaFace detections on every frame, then each face box pixelated (cosmos-predict1
``auxiliary/guardrail/face_blur_filter/``: ``RetinaFaceFilter``, confidence 0.7, pixelates faces).

Pixelation: the box (x1, y1 rounded down, x2, y2 rounded up, clipped to the frame) is split into a ``blocks x
blocks`` grid (cell edges at ``floor(k · size / blocks)``; fewer cells when the box is smaller than that); every cell
becomes the mean of its pixels, rounded half to even.
A fixed grid per face, whatever its size, leaves no face recognisable; the mean (not a resample of a few pixels)
leaks nothing from the original detail. Pixels outside the boxes are not touched.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from nemo_cosmos_ar.guardrails.retinaface import RetinaFace, RetinaFaceConfig, postprocess, retinaface_resnet50
from nemo_cosmos_ar.guardrails.safety import as_uint8_thwc

BLOCKS = 5


class FaceDetector:
    """A RetinaFace network on one device with its pre- and post-processing."""

    def __init__(self, net: RetinaFace, *, device: str | torch.device = "cpu", batch_size: int = 8) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.cfg: RetinaFaceConfig = net.cfg
        self.batch_size = batch_size

    @torch.no_grad()
    def detect(self, frames) -> list[torch.Tensor]:
        """Detections per frame: ``[K, 5]`` float32 (x1, y1, x2, y2 in pixels, score), best first."""
        video = torch.from_numpy(as_uint8_thwc(frames))
        _, h, w, _ = video.shape
        mean = torch.tensor(self.cfg.mean_bgr, device=self.device)
        out: list[torch.Tensor] = []
        for i in range(0, video.shape[0], self.batch_size):
            x = video[i : i + self.batch_size].to(self.device).float().flip(-1) - mean  # RGB -> BGR, minus the mean
            loc, logits = self.net(x.permute(0, 3, 1, 2).contiguous())
            out += [postprocess(loc[j], logits[j], h, w, self.cfg) for j in range(x.shape[0])]
        return out

    def to(self, device: str | torch.device) -> FaceDetector:
        self.device = torch.device(device)
        self.net.to(self.device)
        return self


def pixel_box(box, height: int, width: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) in pixels -> integer slice bounds: start rounded down, end rounded up, clipped."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return (max(0, math.floor(x1)), max(0, math.floor(y1)), min(width, math.ceil(x2)), min(height, math.ceil(y2)))


def _cell_ids(n: int, cells: int) -> torch.Tensor:
    """Cell index of each of ``n`` pixels when split into ``cells`` runs with edges ``floor(k n / cells)``."""
    edges = torch.tensor([(k * n) // cells for k in range(1, cells)], dtype=torch.long)
    return torch.bucketize(torch.arange(n), edges, right=True)


def pixelate_boxes(frame: torch.Tensor, boxes, blocks: int = BLOCKS) -> torch.Tensor:
    """Pixelate ``boxes`` in one uint8 ``[H, W, 3]`` frame (a copy; the input is not modified). Later boxes see the
    result of earlier ones where they overlap."""
    out = frame.clone()
    h, w, _ = frame.shape
    for box in boxes:
        x1, y1, x2, y2 = pixel_box(box, h, w)
        if x2 <= x1 or y2 <= y1:
            continue
        rows = _cell_ids(y2 - y1, min(blocks, y2 - y1))
        cols = _cell_ids(x2 - x1, min(blocks, x2 - x1))
        r = F.one_hot(rows).double().T  # [cells_y, h]
        c = F.one_hot(cols).double().T  # [cells_x, w]
        region = out[y1:y2, x1:x2].double()
        # float64: exact integer sums for any box size, so the mean rounds the same everywhere
        means = torch.einsum("kh,hwc,lw->klc", r, region, c) / (r.sum(1)[:, None, None] * c.sum(1)[None, :, None])
        out[y1:y2, x1:x2] = means.round()[rows][:, cols].to(torch.uint8)
    return out


def blur_faces(frames, detector: FaceDetector, blocks: int = BLOCKS):
    """Detect faces in every frame and pixelate them. ``frames``: uint8 ``[T, H, W, 3]`` numpy or torch; returns the
    same type. Frames without a detection come back bit-identical; a CPU tensor with no face at all comes back as
    itself (no copy; generate then writes the MP4 it encoded while the guardrails ran, ``writer.EarlyEncode``)."""
    is_numpy = not isinstance(frames, torch.Tensor)
    video = torch.from_numpy(as_uint8_thwc(frames).copy()) if is_numpy else frames.detach().cpu()
    detections = detector.detect(video)
    if not is_numpy and frames.device.type == "cpu" and not any(len(d) for d in detections):
        return frames
    out = torch.stack([pixelate_boxes(f, d, blocks) if len(d) else f for f, d in zip(video, detections)])
    return out.numpy() if is_numpy else out


def load_face_detector(path: str | Path, *, device: str | torch.device = "cpu", batch_size: int = 8) -> FaceDetector:
    """The released ``Resnet50_Final.pth`` (read with ``weights_only=True``; its ``module.`` prefix is removed)."""
    from nemo_cosmos_ar.guardrails.weights import load_released_weights

    net = retinaface_resnet50()
    load_released_weights(net, path, what="RetinaFace-ResNet50 face detector")
    return FaceDetector(net, device=device, batch_size=batch_size)
