"""Seconds and peak GPU memory of the video guardrails on one 33-frame 640x1024 video, at the released shapes.

Builds random-weight models at the real sizes (SigLIP so400m-patch14-384 vision tower + the 1152->512->256->7
classifier; RetinaFace-ResNet50), or loads the released ones with ``--checkpoint-dir``, and times on one video:

* ``safety filter``: SigLIP preprocessing + encoder + classifier over the frames sampled at 2 fps (3 of 33);
* ``face detection``: RetinaFace over all 33 frames (``--face-batch`` frames per forward) + decoding + NMS;
* ``pixelation``: 3 face boxes of 120x100 px per frame (random weights detect no faces, so this is timed apart);
* ``both (guard)``: ``VideoGuardrails(frames)`` end to end, models resident, and with ``--offload`` semantics
  (each model loaded before use and freed after; with random weights "loading" is building on the device).

Peak memory is ``torch.cuda.max_memory_allocated`` over the timed calls, weights included.

Usage::

    python bench/bench_guardrails.py                       # one GPU, fp32 SigLIP, random weights, real shapes
    python bench/bench_guardrails.py --dtype bf16          # SigLIP in bf16
    python bench/bench_guardrails.py --checkpoint-dir checkpoints   # the released weights, if downloaded
    python bench/bench_guardrails.py --smoke               # CPU, tiny models, 9x64x96 (checks the script)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.guardrails import face_blur, retinaface, safety, siglip  # noqa: E402
from nemo_cosmos_ar.guardrails.runner import VideoGuardrails  # noqa: E402

TINY_SIGLIP = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, warmup: int = 1, iters: int = 3) -> tuple[float, float]:
    """(seconds per call, peak GiB over the timed calls; NaN on CPU)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return (time.perf_counter() - start) / iters, peak


def build_random(smoke: bool, device: torch.device, dtype: torch.dtype, face_batch: int):
    """Loaders for random-weight models at the real (or, for --smoke, tiny) shapes."""

    def load_safety():
        torch.manual_seed(0)
        cfg = siglip.SiglipVisionConfig(**(TINY_SIGLIP if smoke else safety.SO400M_VISION))
        encoder = siglip.SiglipVisionTower(cfg).init_random()
        with torch.device(device):
            clf = safety.SafetyClassifier(input_size=cfg.hidden_size)
        return safety.VideoSafetyFilter(
            encoder, clf, siglip.SiglipPreprocess(cfg.image_size), device=device, dtype=dtype
        )

    def load_face():
        torch.manual_seed(0)
        with torch.device(device):
            if smoke:
                body = retinaface.ResNetBody((1, 1, 1, 1), 4)
                net = retinaface.RetinaFace(body, body.out_channels, retinaface.RetinaFaceConfig(out_channels=16))
            else:
                net = retinaface.retinaface_resnet50()
            for head in net.ClassHead:  # random logits would pass thousands of boxes to NMS: make them background
                torch.nn.init.zeros_(head.conv1x1.weight)
                head.conv1x1.bias.data.copy_(torch.tensor([8.0, -8.0]).repeat(head.conv1x1.bias.numel() // 2))
        return face_blur.FaceDetector(net, device=device, batch_size=face_batch)

    return load_safety, load_face


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models on CPU, 9x64x96 (seconds)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="time the released weights found here")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="SigLIP dtype (default fp32)")
    parser.add_argument("--face-batch", type=int, default=8, help="frames per RetinaFace forward (default 8)")
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()

    if args.smoke:
        device, (t, h, w) = torch.device("cpu"), (9, 64, 96)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --smoke on CPU")
        device, (t, h, w) = torch.device("cuda"), (33, 640, 1024)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=gen)
    boxes = torch.tensor(
        [[x, y, x + 100, y + 120, 0.9] for x, y in ((50, 40), (400, 200), (w - 150, h - 160))], dtype=torch.float32
    ) * (0.1 if args.smoke else 1.0)

    if args.checkpoint_dir is not None:
        ref = VideoGuardrails.from_checkpoint_dir(
            args.checkpoint_dir, device=device, dtype=dtype, batch_size=args.face_batch
        )
        load_safety, load_face = ref._load_safety, ref._load_detector
        source = f"released weights from {args.checkpoint_dir}"
    else:
        load_safety, load_face = build_random(args.smoke, device, dtype, args.face_batch)
        source = "random weights" + (", tiny shapes" if args.smoke else ", released shapes")

    rows = []
    t0 = time.perf_counter()
    filt = load_safety()
    _sync(device)
    build_safety = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = load_face()
    _sync(device)
    build_face = time.perf_counter() - t0
    n_sig = sum(p.numel() for p in filt.encoder.parameters()) + sum(p.numel() for p in filt.classifier.parameters())
    n_face = sum(p.numel() for p in det.net.parameters())

    verdict = safety.check_video(frames, filt)
    sec, peak = _timed(lambda: safety.check_video(frames, filt), device, iters=args.iters)
    rows.append(("safety filter (SigLIP + MLP)", len(verdict.frames), sec, peak))
    sec, peak = _timed(lambda: det.detect(frames), device, iters=args.iters)
    rows.append(("face detection (RetinaFace-R50)", t, sec, peak))
    sec, peak = _timed(lambda: [face_blur.pixelate_boxes(f, boxes) for f in frames], device, iters=args.iters)
    rows.append(("pixelation (3 boxes/frame, CPU)", t, sec, peak))
    guard = VideoGuardrails(lambda: filt, lambda: det, device=device)
    sec, peak = _timed(lambda: guard(frames), device, iters=args.iters)
    rows.append(("both (guard), models resident", t, sec, peak))
    filt = det = guard = None  # drop the resident models before the offload run (the lambdas above are done)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    off = VideoGuardrails(load_safety, load_face, device=device, offload=True)
    sec, peak = _timed(lambda: off(frames), device, warmup=0, iters=1)
    rows.append(("both, offload (load + run + free each)", t, sec, peak))

    print(
        f"\nVideo guardrails on one {t}x{h}x{w} video ({device}, SigLIP {args.dtype}, {source}); "
        f"SigLIP+classifier {n_sig / 1e6:.1f} M params (built in {build_safety:.1f}s), RetinaFace "
        f"{n_face / 1e6:.1f} M (built in {build_face:.1f}s); sampled-frame verdict: "
        f"{'safe' if verdict.safe else 'unsafe'}\n"
    )
    print("| stage | frames | seconds | peak GiB |")
    print("|---|---:|---:|---:|")
    for name, n, sec, peak in rows:
        print(f"| {name} | {n} | {sec:.3f} | {peak:.2f} |")


if __name__ == "__main__":
    main()
