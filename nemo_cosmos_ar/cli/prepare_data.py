"""``cosmos-ar prepare-data``: a folder of MP4s -> a clip-token dataset for training (see docs/data.md).

Examples::

    cosmos-ar prepare-data --videos my_mp4s/ --output datasets/mine --resolution 384x640 --num-frames 33 \\
        --window-stride 8 --val-fraction 0.1 --tokenizer checkpoints/Cosmos-Tokenize1-DV8x16x16-720p
    cosmos-ar prepare-data --dataset tealrobot_video_small              # everything from the registry
    torchrun --nproc-per-node 8 -m nemo_cosmos_ar.cli prepare-data ...   # one worker per GPU
    cosmos-ar prepare-data --make-samples 6 --videos samples/           # write the bundled sample videos only

Interrupted? Run the same command again: it resumes, and the result is identical to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import os

from nemo_cosmos_ar import checks
from nemo_cosmos_ar.cli.describe import parse_resolution


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nemo_cosmos_ar.data.prepare_config import DEFAULT_TOKENIZER

    p.add_argument("--videos", help="folder of videos, searched recursively (default: the --dataset's)")
    p.add_argument("--output", help="dataset folder to write (default: the --dataset's)")
    p.add_argument("--dataset", help="registered dataset name: supplies the defaults of the options below")
    p.add_argument("--resolution", type=parse_resolution, help="clip HEIGHTxWIDTH, multiples of 16; default 384x640")
    p.add_argument("--num-frames", type=int, help="frames per clip, 1+8k; default 33")
    p.add_argument("--window-stride", type=int, help="a clip starts every N frames; default 1 (as cosmos-predict1)")
    p.add_argument("--frame-stride", type=int, help="take every N-th frame inside a clip; default 1")
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help=f"tokenizer folder; default {DEFAULT_TOKENIZER}")
    p.add_argument("--val-fraction", type=float, default=0.0, help="fraction of videos held out for validation")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (under torchrun: one per rank)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per tokenizer batch (keep it when resuming)")
    p.add_argument(
        "--backend",
        choices=("auto", "eager", "fast", "jit"),
        default="auto",
        help="tokenizer backend; default auto: fast on a GPU (torch.compile, eager bf16's indices bit for bit, ~1.5x), "
        "eager on CPU",
    )
    p.add_argument("--prefetch", type=int, default=2, help="units decoded ahead of the encoder (0: none); default 2")
    p.add_argument(
        "--decode-workers",
        type=int,
        default=0,
        help="decode processes per worker when one decoding thread cannot keep the GPU busy; default 0",
    )
    p.add_argument(
        "--resize-device",
        choices=("cpu",),
        default=None,
        help="resize where frames are decoded (CPU) instead of on the GPU; changes the result slightly",
    )
    p.add_argument("--device", help="cuda or cpu; default cuda when available")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset or unfinished run")
    p.add_argument("--make-samples", type=int, metavar="N", help="first write N bundled sample videos into --videos")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """A ``PrepareConfig`` from the arguments, filling unset ones from ``--dataset`` and then the defaults."""
    from nemo_cosmos_ar.data.prepare import PrepareConfig
    from nemo_cosmos_ar.data.registry import get_dataset
    from nemo_cosmos_ar.data.windows import WindowSpec

    try:
        spec = get_dataset(args.dataset) if args.dataset else None
    except KeyError as e:  # a KeyError prints quoted; the message is for people
        raise checks.UserError(e.args[0]) from None
    fields = {
        "resolution": (384, 640),
        "num_frames": 33,
        "window_stride": 1,
        "frame_stride": 1,
        "videos": None,
        "output": None,
    }
    from_spec = {} if spec is None else {"videos": spec.videos_path, "output": spec.folder_path}
    for name, default in fields.items():
        given = getattr(args, name)
        registered = from_spec.get(name, getattr(spec, name, None)) if spec is not None else None
        if given is not None and registered is not None and name not in from_spec and given != registered:
            raise ValueError(
                f"--{name.replace('_', '-')} {given} contradicts dataset {spec.name!r} ({registered}); "
                "drop the option or register another dataset name"
            )
        fields[name] = given if given is not None else registered if registered is not None else default
    if fields["videos"] is None or fields["output"] is None:
        raise ValueError("--videos and --output are required (or a --dataset that names them)")
    for name in ("num_frames", "window_stride", "frame_stride"):
        checks.check_int(fields[name], f"--{name.replace('_', '-')}", 1, 100_000)
    return PrepareConfig(
        videos=fields["videos"],
        output=fields["output"],
        resolution=fields["resolution"],
        windows=WindowSpec(fields["num_frames"], fields["window_stride"], fields["frame_stride"]),
        tokenizer=args.tokenizer,
        val_fraction=args.val_fraction,
        dataset=args.dataset,
        batch_size=args.batch_size,
        backend=args.backend,
        device=args.device,
        overwrite=args.overwrite,
        prefetch=args.prefetch,
        decode_workers=args.decode_workers,
        resize_device=args.resize_device,
    )


RESUME = "run the same command again to resume (finished clips are kept)"


def run(args: argparse.Namespace) -> int:
    with checks.guard("prepare-data", resume=RESUME):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from nemo_cosmos_ar.data.prepare import prepare_dataset
    from nemo_cosmos_ar.data.samples import write_sample_videos

    # Everything is checked before the first file is written (sample videos included).
    workers = checks.check_int(args.workers, "--workers", 1, 1024)
    checks.check_device(args.device)
    if args.make_samples is not None:
        checks.check_int(args.make_samples, "--make-samples", 1, 1000)
        if not args.videos:
            raise checks.UserError("--make-samples needs --videos (the folder to write the sample videos into)")
        checks.check_writable(args.videos, "--videos", inside=True)
        if not args.output and not args.dataset:
            h, w = args.resolution or (384, 640)
            paths = write_sample_videos(args.videos, args.make_samples, max(48, (args.num_frames or 33) + 15), h, w)
            print(f"wrote {len(paths)} sample videos to {args.videos}")
            return 0
    cfg = config_from_args(args)
    checks.check_no_overlap(cfg.output, [("--videos", cfg.videos), ("--tokenizer", cfg.tokenizer)])
    if args.make_samples is not None:  # the videos are written first: everything else must be right already
        from nemo_cosmos_ar.data.prepare import tokenizer_checksum

        tokenizer_checksum(cfg.tokenizer)
        checks.check_writable(cfg.output, inside=True)
        h, w = cfg.resolution
        paths = write_sample_videos(cfg.videos, args.make_samples, max(48, cfg.windows.num_frames + 15), h, w)
        print(f"wrote {len(paths)} sample videos to {cfg.videos}")
    summary = prepare_dataset(cfg, workers=workers, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(summary.format())
    return 0
