"""RetinaFace, re-implemented small: a feature pyramid over three backbone stages, SSH context modules, 1x1 heads
per level, SSD-style priors, box decoding with variances, and greedy NMS (cosmos-predict1
``auxiliary/guardrail/face_blur_filter/``: ``Resnet50_Final.pth``, confidence 0.7).

Why our own and not a package: the maintained RetinaFace packages either pull in TensorFlow (``retina-face``),
download weights on import, or depend on torchvision (``retinaface-pytorch``, absent from this stack: torchvision
would be a new pinned dependency for one ResNet and one NMS call). The model is ~250 lines of arithmetic that we can
test against its formulas. The head is backbone-agnostic: any module returning three feature maps at strides 8, 16,
32 works; ``ResNetBody`` is a ResNet-50 whose parameter names match torchvision's, so the released file loads.

NOT IN THE REFERENCE (the public RetinaFace-ResNet50 recipe the released ``Resnet50_Final.pth`` was trained with;
check against the file): anchors ``min_sizes`` (16, 32) / (64, 128) / (256, 512) at strides 8 / 16 / 32, variances
(0.1, 0.2), input BGR minus (104, 117, 123), FPN/SSH width 256, parameter names ``body.*``, ``fpn.*``, ``ssh{1,2,3}.*``,
``{Class,Bbox,Landmark}Head.{0,1,2}.conv1x1.*`` behind a ``module.`` prefix; NMS IoU 0.4, top-k 5000 / 750.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RetinaFaceConfig:
    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    out_channels: int = 256
    mean_bgr: tuple[float, float, float] = (104.0, 117.0, 123.0)
    confidence: float = 0.7
    nms_iou: float = 0.4
    top_k: int = 5000  # candidates kept before NMS
    keep_top_k: int = 750  # boxes kept after NMS


# --- backbone -------------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3x3 (ResNet v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNetBody(nn.Module):
    """ResNet stem + 4 stages, returning stages 2-4 (strides 8, 16, 32). ``layers=(3, 4, 6, 3), width=64`` is
    ResNet-50 with torchvision's parameter names (no ``fc``: the detector never used it)."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3), width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes = width * 2**i
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck(inplanes, planes, stride=2 if (b == 0 and i > 0) else 1))
                inplanes = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.out_channels = tuple(width * 2**i * Bottleneck.expansion for i in (1, 2, 3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


# --- neck and heads -------------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, k: int, leaky: float | None) -> nn.Sequential:
    """conv (no bias) + BN [+ LeakyReLU(leaky)]; ``leaky=None`` leaves the activation to the caller."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky))
    return nn.Sequential(*layers)


def _leak(channels: int) -> float:
    return 0.1 if channels <= 64 else 0.0  # the recipe's rule: narrow (MobileNet-width) necks use a leaky ReLU


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out: int) -> None:
        super().__init__()
        leaky = _leak(out)
        self.output1, self.output2, self.output3 = (_conv_bn(c, out, 1, leaky) for c in in_channels)
        self.merge1 = _conv_bn(out, out, 3, leaky)
        self.merge2 = _conv_bn(out, out, 3, leaky)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    """Single-stage context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches, concatenated, ReLU."""

    def __init__(self, cin: int, out: int) -> None:
        super().__init__()
        leaky = _leak(out)
        self.conv3X3 = _conv_bn(cin, out // 2, 3, None)
        self.conv5X5_1 = _conv_bn(cin, out // 4, 3, leaky)
        self.conv5X5_2 = _conv_bn(out // 4, out // 4, 3, None)
        self.conv7X7_2 = _conv_bn(out // 4, out // 4, 3, leaky)
        self.conv7x7_3 = _conv_bn(out // 4, out // 4, 3, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        branches = [self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))]
        return F.relu(torch.cat(branches, dim=1))


class _Head(nn.Module):
    def __init__(self, cin: int, outputs: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(cin, outputs, 1)


class RetinaFace(nn.Module):
    """Backbone (three maps at strides 8/16/32) -> FPN -> SSH per level -> class and box logits per prior."""

    def __init__(self, body: nn.Module, in_channels: tuple[int, int, int], cfg: RetinaFaceConfig = RetinaFaceConfig()):
        super().__init__()
        self.cfg = cfg
        out = cfg.out_channels
        self.body = body
        self.fpn = FPN(in_channels, out)
        self.ssh1, self.ssh2, self.ssh3 = SSH(out, out), SSH(out, out), SSH(out, out)
        anchors = [len(m) for m in cfg.min_sizes]
        self.ClassHead = nn.ModuleList(_Head(out, a * 2) for a in anchors)
        self.BboxHead = nn.ModuleList(_Head(out, a * 4) for a in anchors)
        # Landmarks are not used for blurring; the heads exist so the released file loads strictly.
        self.LandmarkHead = nn.ModuleList(_Head(out, a * 10) for a in anchors)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``[B, 3, H, W]`` preprocessed. Returns box offsets ``[B, N, 4]`` and class logits ``[B, N, 2]``,
        N over levels, then rows, columns and anchors (the order of ``priors``)."""
        feats = self.fpn(self.body(x))
        feats = [self.ssh1(feats[0]), self.ssh2(feats[1]), self.ssh3(feats[2])]
        b = x.shape[0]
        loc = torch.cat([h.conv1x1(f).permute(0, 2, 3, 1).reshape(b, -1, 4) for h, f in zip(self.BboxHead, feats)], 1)
        conf = torch.cat([h.conv1x1(f).permute(0, 2, 3, 1).reshape(b, -1, 2) for h, f in zip(self.ClassHead, feats)], 1)
        return loc, conf


def retinaface_resnet50(cfg: RetinaFaceConfig = RetinaFaceConfig()) -> RetinaFace:
    body = ResNetBody()
    return RetinaFace(body, body.out_channels, cfg)


# --- priors, decoding, NMS ------------------------------------------------------------------------------------


def priors(height: int, width: int, cfg: RetinaFaceConfig = RetinaFaceConfig()) -> torch.Tensor:
    """Anchors ``[N, 4]`` as (cx, cy, w, h) in [0, 1] image units: per level (stride s, feature map
    ``ceil(H/s) x ceil(W/s)``), per row i, column j, anchor size m:
    ``((j + .5) s / W, (i + .5) s / H, m / W, m / H)``."""
    out = []
    for sizes, step in zip(cfg.min_sizes, cfg.steps):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy = (torch.arange(rows, dtype=torch.float32) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float32) + 0.5) * step / width
        gy, gx = torch.meshgrid(cy, cx, indexing="ij")
        for_level = []
        for m in sizes:
            wh = torch.tensor([m / width, m / height]).expand(rows, cols, 2)
            for_level.append(torch.cat([torch.stack([gx, gy], -1), wh], -1))
        out.append(torch.stack(for_level, dim=2).reshape(-1, 4))  # anchors vary fastest
    return torch.cat(out)


def decode(loc: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float] = (0.1, 0.2)) -> torch.Tensor:
    """Offsets ``[N, 4]`` -> boxes ``[N, 4]`` (x1, y1, x2, y2) in [0, 1] units:
    centre = a_c + loc_xy · v0 · a_wh, size = a_wh · exp(loc_wh · v1)."""
    centre = anchors[:, :2] + loc[:, :2] * variances[0] * anchors[:, 2:]
    size = anchors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix ``[len(a), len(b)]`` of x1y1x2y2 boxes."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy NMS: highest score first, drop every later box whose IoU with a kept one is > ``iou``. Returns kept
    indices in descending score order."""
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps = box_iou(boxes[order], boxes[order]) > iou
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):  # after the confidence cut there are few candidates per frame
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long)]


def postprocess(
    loc: torch.Tensor, logits: torch.Tensor, height: int, width: int, cfg: RetinaFaceConfig = RetinaFaceConfig()
) -> torch.Tensor:
    """One image's raw outputs -> detections ``[K, 5]`` (x1, y1, x2, y2 in pixels, score), best first."""
    scores = torch.softmax(logits.float(), dim=-1)[:, 1]
    boxes = decode(loc.float(), priors(height, width, cfg).to(loc.device), cfg.variances)
    keep = scores > cfg.confidence
    boxes, scores = boxes[keep], scores[keep]
    top = torch.argsort(scores, descending=True, stable=True)[: cfg.top_k]
    boxes, scores = boxes[top].cpu(), scores[top].cpu()
    kept = nms(boxes, scores, cfg.nms_iou)[: cfg.keep_top_k]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return torch.cat([boxes[kept] * scale, scores[kept, None]], dim=1)
