"""Where the face blur's 0.82 s goes, and what the RetinaFace forward costs in other precisions and layouts (issue 13:
NVIDIA's ~62 s per video counts the guardrails, which ours measured apart; prepared in the eleventh session).

On one 33-frame 640x1024 video, RetinaFace-ResNet50 with random weights (the released shapes):

* ``detect`` as generate runs it (``FaceDetector.detect``: 8 frames a forward, fp32, NCHW, then decode + NMS per
  frame), split into the forwards alone and the post-processing;
* the forward over all 33 frames (in chunks of ``--batch``) in variants: fp32 as torch's defaults run it, fp32 with
  ``cudnn.benchmark``, channels-last, channels-last + bf16 autocast, and TF32 off (the exact fp32 reference).

Each variant's box offsets and class logits are compared with the TF32-off fp32 forward (relative L2). A variant
that is fast and close is a candidate for ``FaceDetector``; the detections themselves would need the released
weights and real faces to compare (random weights detect none).

    python3 bench/bench_face_detector.py            # one GPU, ~1 min
    python3 bench/bench_face_detector.py --smoke    # CPU, a tiny network at 2 x 64 x 96 (checks the script)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nemo_cosmos_ar.guardrails import face_blur, retinaface  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_s(fn, device: torch.device, reps: int) -> float:
    fn()  # warm-up: cuDNN's algorithm choice, allocator
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--batch", type=int, default=8, help="frames per forward (FaceDetector's default: 8)")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    device = torch.device("cpu" if args.smoke else "cuda")
    frames, h, w = (2, 64, 96) if args.smoke else (33, 640, 1024)
    torch.manual_seed(0)
    if args.smoke:
        body = retinaface.ResNetBody((1, 1, 1, 1), 4)
        net = retinaface.RetinaFace(body, body.out_channels, retinaface.RetinaFaceConfig(out_channels=16))
    else:
        net = retinaface.retinaface_resnet50()
    det = face_blur.FaceDetector(net, device=device, batch_size=args.batch)
    # a smooth video (a moving gradient with noise), uint8 [T, H, W, 3] on the CPU as generate hands it over
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, (xx + yy) / 2], -1)
    video = torch.stack([(base + 0.05 * t / frames) % 1 for t in range(frames)])
    video = ((video + 0.02 * torch.randn_like(video)).clamp(0, 1) * 255).to(torch.uint8)
    mean = torch.tensor(det.cfg.mean_bgr, device=device)
    x = (video.to(device).float().flip(-1) - mean).permute(0, 3, 1, 2).contiguous()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"# {name}, torch {torch.__version__}, RetinaFace-R50 {'(tiny)' if args.smoke else ''} on {frames}x{h}x{w}; "
          f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}")  # fmt: skip

    def forward(inp: torch.Tensor, autocast: bool = False):
        outs = []
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            for i in range(0, inp.shape[0], args.batch):
                outs.append(net(inp[i : i + args.batch]))
        return torch.cat([o[0] for o in outs]).float(), torch.cat([o[1] for o in outs]).float()

    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    ref = forward(x)
    exact_s = _median_s(lambda: forward(x), device, args.reps)
    torch.backends.cudnn.allow_tf32 = tf32

    rows = [("fp32, TF32 off (the reference)", exact_s, 0.0, 0.0)]

    def variant(label, inp, autocast=False):
        s = _median_s(lambda: forward(inp, autocast), device, args.reps)
        loc, conf = forward(inp, autocast)
        rows.append((label, s, _rel(loc, ref[0]), _rel(conf, ref[1])))

    variant("fp32, torch's defaults (what FaceDetector runs)", x)
    torch.backends.cudnn.benchmark = True
    variant("fp32, cudnn.benchmark", x)
    net.to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    variant("fp32, channels-last, cudnn.benchmark", xc)
    variant("bf16 autocast, channels-last, cudnn.benchmark", xc, autocast=True)
    net.to(memory_format=torch.contiguous_format)
    torch.backends.cudnn.benchmark = False

    detect_s = _median_s(lambda: det.detect(video), device, args.reps)
    loc, conf = forward(x)
    post_s = _median_s(
        lambda: [retinaface.postprocess(loc[i], conf[i], h, w, det.cfg) for i in range(frames)], device, args.reps
    )
    found = sum(len(d) for d in det.detect(video))
    print(f"\n| forward over {frames} frames ({args.batch} a call) | s | rel L2 box offsets | rel L2 class logits |")
    print("|---|---:|---:|---:|")
    for label, s, e_loc, e_conf in rows:
        print(f"| {label} | {s:.3f} | {e_loc:.2e} | {e_conf:.2e} |")
    print(f"\n| FaceDetector.detect, all {frames} frames | {detect_s:.3f} s |\n|---|---:|")
    print(f"| of which decode + NMS ({found} detections) | {post_s:.3f} s |")


if __name__ == "__main__":
    main()
