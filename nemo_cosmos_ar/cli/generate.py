"""``cosmos-ar generate``: an image or the last 9 frames of a video -> a 33-frame MP4, with a base AR model.

Examples::

    cosmos-ar generate --input robot.mp4 --output outputs/robot.mp4
    cosmos-ar generate --checkpoint checkpoints/Cosmos-Predict1-4B-Base_post-trained/model.pt \\
        --input first_frame.jpg --top-p 0.8 --temperature 1.0 --seed 1 --offload-tokenizer

No NeMo or Megatron import: the model runs as the plain PyTorch transformer of ``model/reference.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nemo_cosmos_ar.model.presets import PRESETS

DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32"}

DESCRIPTION = """Generate a 33-frame video (25 fps MP4) from an image or a video with a Cosmos-Predict1 base
autoregressive model (4B or 12B, or a post-trained export of one), as cosmos-predict1's
`autoregressive/inference/base.py` does. The input is resized to cover the model resolution (640x1024 for the
released models), centre-cropped, padded to 33 frames with its last frame and tokenized with the DV8x16x16
tokenizer; the first latent frame (image) or two (9-frame video) are the prompt, the model samples the other
10,240 / 7,680 tokens one at a time with a KV cache (temperature + top-p, seeded), and the DV8x16x16 decoder turns
the whole grid back into frames.

Only the discrete decoder path exists: this is cosmos-predict1 with --disable_diffusion_decoder
--disable_guardrail. The 7B diffusion decoder (sharper frames) and the safety guardrails are not implemented;
asking for them is an error. Video2World (5B/13B, text prompts) checkpoints are not supported."""

EPILOG = """examples:
  cosmos-ar generate --input robot.mp4 --output outputs/robot.mp4            # last 9 frames -> 33 frames
  cosmos-ar generate --input robot.mp4 --num-input-frames 1                  # from the last frame only
  cosmos-ar generate --input frame.jpg --seed 7 --top-p 0.8 --temperature 1.0
  cosmos-ar generate --checkpoint out/Cosmos-Predict1-4B-Base_post-trained --resolution 384x640 --input clip.mp4
  cosmos-ar generate --model tiny --checkpoint tiny/model.pt --tokenizer tiny_tok --input x.png --device cpu

Defaults are cosmos-predict1's: --num-input-frames 9, --temperature 1.0, --top-p 0.8, --seed 0, 25 fps, and
--checkpoint / --tokenizer in its checkpoints/ layout. A given seed reproduces the tokens on the same device and
software. Outputs are written under a temporary name and renamed at the end; an existing output is refused without
--overwrite. See docs/generate.md."""

NOT_BUILT = ("{flag} is not available: only the discrete DV8x16x16 decoder path is implemented (cosmos-predict1's "
             "--disable_diffusion_decoder --disable_guardrail); the output is decoded by the tokenizer and is not "
             "safety-filtered. Drop {flag}.")  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nemo_cosmos_ar.cli.describe import parse_resolution
    from nemo_cosmos_ar.inference.pipeline import DEFAULT_CHECKPOINT, DEFAULT_TOKENIZER

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description, p.epilog = DESCRIPTION, EPILOG
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--input",
        required=True,
        type=Path,
        help="an image (.png/.jpg/...; one prompt frame) or a video (its last --num-input-frames frames)",
    )
    io.add_argument(
        "--num-input-frames",
        type=int,
        choices=(1, 9),
        help="prompt frames taken from the end of a video: 9 (default; 2 latent frames) or 1 (1 latent "
        "frame); an image is always a one-frame prompt",
    )
    io.add_argument(
        "--output",
        type=Path,
        default=Path("outputs/output.mp4"),
        help="MP4 to write (33 frames, 25 fps, uint8 RGB); default outputs/output.mp4",
    )
    io.add_argument("--overwrite", action="store_true", help="replace an existing --output / --save-tokens")
    io.add_argument(
        "--save-tokens",
        type=Path,
        metavar="PATH",
        help="also save the generated token grid [1, 5, H/16, W/16] int64 (torch.save), prompt first",
    )
    mo = p.add_argument_group("model")
    mo.add_argument(
        "--checkpoint",
        type=Path,
        default=Path(DEFAULT_CHECKPOINT),
        help="native weights: model.pt (flat dict, 'model.' keys), iter_*.pt, TP shards "
        f"*_model_mp_<r>.pt, or a Hugging Face folder; default {DEFAULT_CHECKPOINT}",
    )
    mo.add_argument(
        "--model",
        help=f"architecture: a preset ({', '.join(PRESETS)}) or a config.json; default: the "
        "config.json next to the weights, else the preset whose shapes the weights have",
    )
    mo.add_argument(
        "--tokenizer",
        type=Path,
        default=Path(DEFAULT_TOKENIZER),
        help=f"DV8x16x16 folder with encoder.jit and decoder.jit; default {DEFAULT_TOKENIZER}",
    )
    mo.add_argument(
        "--tokenizer-backend",
        choices=("eager", "jit"),
        default="eager",
        help="eager: this package's network with the files' weights (any dtype); jit: the TorchScript "
        "files (their traced dtype only)",
    )
    mo.add_argument(
        "--resolution",
        type=parse_resolution,
        metavar="HxW",
        help="output size, multiples of 16; default the model's grid x16 (640x1024 for 4b/12b). Use the "
        "post-training resolution for a post-trained model (e.g. 384x640)",
    )
    sa = p.add_argument_group("sampling")
    sa.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy; default 1.0")
    sa.add_argument("--top-p", type=float, default=0.8, help="nucleus mass in (0, 1]; 1 = off; default 0.8")
    sa.add_argument(
        "--top-k", type=int, default=None, help="keep only the k most likely tokens (applied before top-p)"
    )
    sa.add_argument("--seed", type=int, default=0, help="seed of the sampling generator; default 0")
    rt = p.add_argument_group("runtime")
    rt.add_argument("--device", help="cuda, cuda:N or cpu; default cuda when available")
    rt.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        help="model and tokenizer dtype; default bfloat16 on CUDA " "(as cosmos-predict1), float32 on CPU",
    )
    rt.add_argument(
        "--offload-ar-model",
        action="store_true",
        help="load the AR model right before generating and delete it after (lower peak memory)",
    )
    rt.add_argument(
        "--offload-tokenizer",
        action="store_true",
        help="load the tokenizer for encoding, delete it, reload it for decoding",
    )
    rt.add_argument("--no-progress", action="store_true", help="no progress bar")
    rt.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="decode eagerly on a GPU instead of replaying one captured CUDA graph per token (15x slower for the 4B; "
        "logits agree up to bf16 noise)",
    )
    nb = p.add_argument_group("not implemented (error if given)")
    nb.add_argument(
        "--diffusion-decoder",
        action="store_true",
        help="the 7B diffusion decoder of cosmos-predict1: NOT implemented; output is DV-decoded",
    )
    nb.add_argument(
        "--guardrail",
        action="store_true",
        help="cosmos-predict1's safety guardrails: NOT implemented; outputs are not filtered",
    )


def options_from_args(args: argparse.Namespace):
    """A ``GenerateOptions`` from parsed arguments (refusing the flags of parts that are not built)."""
    import torch

    from nemo_cosmos_ar.inference.pipeline import GenerateOptions
    from nemo_cosmos_ar.inference.sampling import SamplingConfig

    for flag in ("diffusion_decoder", "guardrail"):
        if getattr(args, flag):
            raise ValueError(NOT_BUILT.format(flag="--" + flag.replace("_", "-")))
    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
    return GenerateOptions(
        input=args.input, output=args.output, checkpoint=args.checkpoint, tokenizer=args.tokenizer, model=args.model,
        num_input_frames=args.num_input_frames or 9, resolution=args.resolution, seed=args.seed, device=args.device,
        dtype=dtype, tokenizer_backend=args.tokenizer_backend, offload_ar_model=args.offload_ar_model,
        offload_tokenizer=args.offload_tokenizer, overwrite=args.overwrite, save_tokens=args.save_tokens,
        progress=not args.no_progress, step_mode="dynamic" if args.no_cuda_graph else "auto",
        sampling=SamplingConfig(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from nemo_cosmos_ar.inference.pipeline import generate_video

    opts = options_from_args(args)
    if opts.is_image and args.num_input_frames == 9:
        print("note: an image is a one-frame prompt (--num-input-frames 1)", file=sys.stderr)
    result = generate_video(opts)
    t, h, w = result.tokens.shape[1:]
    s, st = result.seconds, result.stats
    print(f"wrote {result.output}: 33 frames at {16 * h}x{16 * w}, 25 fps (grid {t}x{h}x{w}: {st.prompt_tokens} "
          f"prompt + {st.generated_tokens} generated tokens)")  # fmt: skip
    print(f"load {s['load']:.1f}s, encode {s['encode']:.1f}s, prefill {st.prefill_s:.2f}s, decode {st.decode_s:.1f}s "
          f"({st.tokens_per_s:.1f} tokens/s), DV decode {s['decode']:.1f}s, write {s['write']:.1f}s")  # fmt: skip
    if args.save_tokens:
        print(f"tokens [1, {t}, {h}, {w}] int64 -> {args.save_tokens}")
    return 0
