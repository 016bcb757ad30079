"""``cosmos-ar check-precision``: what ``--decode-weights int8`` and ``--diffusion-decoder-gemm fp8`` change, measured
on your checkpoint and one of your videos, before you turn them on.

Examples::

    cosmos-ar check-precision --input robot.mp4
    cosmos-ar check-precision --input robot.mp4 --checkpoint out/my_post_trained/model.pt --report check.json
    cosmos-ar check-precision --input robot.mp4 --parts ar          # the AR model only (no diffusion decoder)

Takes 33 frames of the video (from ``--start-frame``), tokenizes them, and measures:

* the AR model with int8 decode weights against bf16: the negative log-likelihood of the clip's real tokens under
  each (does int8 predict real video as well?), top-1 agreement, KL and the total variation of the sampling
  distributions (``--temperature``, ``--top-p`` as generate's);
* the 7B diffusion decoder with FP8 GEMMs against bf16, decoding the clip's own tokens from the same seed: PSNR of
  each against the clip, of one against the other, and of two bf16 decodes with different seeds (the yardstick:
  FP8 should move the video less than a change of seed does). Needs the decoder's folders under
  ``--checkpoint-dir`` (as ``generate``).

* speculative decoding (``generate --speculative-window``, lossless): the clip's continuation generated with it
  and with one token a step (bf16), the tokens each of its steps accepted and both times (``--speculative-window``,
  default 16; 0 skips it).

``inference/precision_check.py`` has the definitions. One GPU, TP=1. On an H200 with the 4B and the 7B decoder it took
74 s and at most 14.8 GiB for the AR part and 17.6 GiB for the decoder's (one 7B network resident at a time;
BENCHMARKS.md, issue 13).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nemo_cosmos_ar.cli.generate_args import DTYPES, TOKENIZER_DIR

PARTS = ("ar", "dd")
DEFAULT_AR = Path("Cosmos-Predict1-4B") / "model.pt"


def _resolution(text: str) -> tuple[int, int]:
    from nemo_cosmos_ar.cli.describe import parse_resolution

    return parse_resolution(text)


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"--parts takes a comma list of {', '.join(PARTS)}; got {text!r}")
    return parts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (__doc__ or "").split("\n\n")[0].replace("``", "")
    io = p.add_argument_group("input and output")
    io.add_argument("--input", type=Path, required=True, help="a video of at least 33 frames (MP4 ...)")
    io.add_argument("--start-frame", type=int, default=0, help="first of the 33 frames used (default 0)")
    io.add_argument(
        "--num-input-frames", type=int, choices=(1, 9), default=9,
        help="the prompt generate would take (9 frames: 2 latent frames; 1: an image); the AR model is scored on "
        "the tokens after it (default 9)",
    )  # fmt: skip
    io.add_argument("--report", type=Path, help="also write the numbers as JSON here")
    io.add_argument("--overwrite", action="store_true", help="replace an existing --report")
    io.add_argument(
        "--parts", type=_parts, default=None,
        help="what to check: ar, dd or ar,dd (default: ar, and dd when the diffusion decoder's weights are found)",
    )  # fmt: skip
    mo = p.add_argument_group("models (the layout of `cosmos-ar download`, as generate)")
    mo.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"), help="default checkpoints")
    mo.add_argument("--checkpoint", type=Path, help=f"the AR checkpoint; default <checkpoint-dir>/{DEFAULT_AR}")
    mo.add_argument("--model", help="architecture (preset or config.json); default: from the checkpoint")
    mo.add_argument("--tokenizer", type=Path, help=f"DV8x16x16 folder; default <checkpoint-dir>/{TOKENIZER_DIR}")
    mo.add_argument("--tokenizer-backend", choices=("eager", "jit"), default="eager", help="default eager")
    mo.add_argument(
        "--diffusion-decoder-dir", type=Path, help="the 7B decoder's folder; default under --checkpoint-dir"
    )
    mo.add_argument("--cv-tokenizer", type=Path, help="the CV8x8x8 folder; default under --checkpoint-dir")
    rt = p.add_argument_group("run")
    rt.add_argument("--resolution", type=_resolution, help="HxW; default the model's (640x1024 for the released)")
    rt.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for KL/TV (default 1.0)")
    rt.add_argument("--top-p", type=float, default=0.8, help="nucleus mass for the TV (default 0.8, NVIDIA's)")
    rt.add_argument("--seed", type=int, default=0, help="the diffusion decoder's noise seed (default 0)")
    rt.add_argument(
        "--speculative-window", type=int, default=None, metavar="L",
        help="also generate the clip's continuation with generate's --speculative-window L and with one token a "
        "step (bf16), and report the tokens each forward accepted and both times (default 63, the fastest window "
        "measured on the H200, or one latent frame's tokens if fewer; 0 = skip)",
    )  # fmt: skip
    rt.add_argument("--no-seed-yardstick", action="store_true", help="skip the second bf16 decode (seed + 1)")
    rt.add_argument("--no-dv", action="store_true", help="skip the DV8x16x16 decoder's PSNR")
    rt.add_argument("--device", help="cuda, cuda:N or cpu; default CUDA when present")
    rt.add_argument("--dtype", choices=sorted(DTYPES), help="default bfloat16 on CUDA, float32 on CPU")


def _decoder_dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR

    return (
        args.diffusion_decoder_dir or args.checkpoint_dir / DIFFUSION_DECODER_DIR,
        args.cv_tokenizer or args.checkpoint_dir / CV_TOKENIZER_DIR,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from nemo_cosmos_ar import video_io
    from nemo_cosmos_ar.inference import checkpoints as ck
    from nemo_cosmos_ar.inference import checks
    from nemo_cosmos_ar.inference import generator as gen
    from nemo_cosmos_ar.inference import precision_check as pc
    from nemo_cosmos_ar.inference.pipeline import default_dtype, output_resolution
    from nemo_cosmos_ar.inference.sampling import SamplingConfig
    from nemo_cosmos_ar.model.config import latent_shape_for
    from nemo_cosmos_ar.runtime import free_memory
    from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

    def say(msg: str) -> None:
        print(f"cosmos-ar check-precision: {msg}", file=sys.stderr, flush=True)

    # ---- every check that costs no model load ----
    if args.report is not None:
        checks.check_output(args.report, "--report", args.overwrite, ".json")
    if args.start_frame < 0:
        raise ValueError(f"--start-frame must be >= 0, got {args.start_frame}")
    if args.speculative_window is not None and args.speculative_window < 0:
        raise ValueError(f"--speculative-window must be >= 0 (0 = skip), got {args.speculative_window}")
    sampling = SamplingConfig(temperature=args.temperature, top_p=args.top_p)
    dd_dir, cv_dir = _decoder_dirs(args)
    dd_found = (dd_dir / "model.pt").is_file()
    parts = args.parts or (("ar", "dd") if dd_found else ("ar",))
    if "dd" in parts:
        for folder, name in ((dd_dir, "model.pt"), (dd_dir, "aux_vars.pt"), (cv_dir, "decoder.jit")):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"--parts dd needs {folder / name} (get the diffusion decoder with `cosmos-ar download "
                    f"--checkpoint-dir {args.checkpoint_dir}`, or pass --parts ar)"
                )
    elif args.parts is None:
        say(f"no diffusion decoder under {args.checkpoint_dir}: checking the AR model only")
    checkpoint = args.checkpoint or args.checkpoint_dir / DEFAULT_AR
    tokenizer_dir = args.tokenizer or args.checkpoint_dir / TOKENIZER_DIR
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"--tokenizer {tokenizer_dir}: no such folder (Cosmos-Tokenize1-DV8x16x16-720p)")
    device = checks.check_device(args.device)
    if "dd" in parts:
        from nemo_cosmos_ar.diffusion_decoder import fp8

        fp8.check_device(device)  # a GPU without FP8 tensor cores: refused now, not after the bf16 decodes
    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else default_dtype(device)
    ckpt = ck.open_checkpoint(checkpoint, args.model)  # memory-mapped: config and shapes only
    height, width = output_resolution(ckpt.cfg, args.resolution)
    grid = latent_shape_for(gen.NUM_OUTPUT_FRAMES, height, width)
    checks.check_grid(grid, ckpt.cfg.latent_shape, height, width)
    ckpt = ckpt.with_latent_shape(grid)
    clip = pc.read_clip(args.input, args.start_frame, gen.NUM_OUTPUT_FRAMES, height, width)
    window = min(63, grid[1] * grid[2]) if args.speculative_window is None else args.speculative_window
    report = pc.PrecisionReport(
        input=str(args.input), frames=clip.shape[1], resolution=(height, width), grid=grid,
        prompt_latent_frames=gen.prompt_latent_frames(args.num_input_frames),
        sampling={"temperature": sampling.temperature, "top_p": sampling.top_p},
    )  # fmt: skip

    # ---- the clip's tokens ----
    t = time.perf_counter()
    tok = load_tokenizer(
        tokenizer_dir, args.tokenizer_backend, device, None if args.tokenizer_backend == "jit" else dtype
    )
    tokens = tok.encode(clip[None].to(device)).cpu()  # [1, T', H', W']
    if tuple(tokens.shape[1:]) != grid:
        raise ValueError(
            f"the tokenizer in {tokenizer_dir} gives a {list(tokens.shape[1:])} grid; expected {list(grid)}"
        )
    if int(tokens.max()) >= ckpt.cfg.vocab_size:
        raise ValueError(
            f"the tokenizer's ids reach {int(tokens.max())}, beyond the model's vocab {ckpt.cfg.vocab_size}"
        )
    say(
        f"tokenized 33 frames of {args.input} at {height}x{width} -> grid {list(grid)} ({time.perf_counter() - t:.1f} s)"
    )

    if "ar" in parts:
        from nemo_cosmos_ar.inference import engine as en

        t = time.perf_counter()
        device = en.init_parallel(1, device)
        engine = en.configure_decode(en.load_engine(ckpt, 1, device, dtype))  # generate's exact defaults
        say(
            f"AR model loaded from {checkpoint} ({time.perf_counter() - t:.1f} s); teacher-forced logits, bf16 then int8"
            + (" (and the two decoders, bf16)" if window else "")
            + " ..."
        )
        report.ar = pc.check_ar(engine, tokens, report.prompt_latent_frames, sampling, window, args.seed)
        del engine
        free_memory(device)

    if "dd" in parts:
        from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

        def make(gemm: str):
            return DiffusionDecoder(dd_dir, cv_dir, device=device, dtype=dtype, gemm=gemm)

        dv = None if args.no_dv else (lambda g: tok.decode(g.to(device)).clamp(-1, 1))
        if dv is None:
            tok = None
            free_memory(device)
        report.dd = pc.check_dd(make, tokens, clip, args.seed, dv, not args.no_seed_yardstick, say)

    print(pc.format_report(report))
    if args.report is not None:
        video_io.write_bytes(args.report, (json.dumps(report.to_dict(), indent=2) + "\n").encode())  # atomic
        say(f"wrote {args.report}")
    return 0
