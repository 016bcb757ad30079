"""``cosmos-ar generate``: an image or the last 9 frames of a video -> a 33-frame MP4, with a base AR model.

Examples::

    cosmos-ar generate --input robot.mp4 --output outputs/robot.mp4
    cosmos-ar generate --checkpoint checkpoints/Cosmos-Predict1-4B-Base_post-trained/model.pt \\
        --input first_frame.jpg --top-p 0.8 --temperature 1.0 --seed 1 --offload-tokenizer
    torchrun --nproc-per-node 2 -m nemo_cosmos_ar.cli generate --num-gpus 2 --input robot.mp4

The 7B diffusion decoder (``nemo_cosmos_ar.diffusion_decoder``) and the guardrails (safety filter + face blur,
``nemo_cosmos_ar.guardrails``) run when their weights are under ``--checkpoint-dir``. cosmos-predict1's flags
(``--input_image_or_video_path``, ``--checkpoint_dir``, ``--ar_model_dir``, ``--video_save_name`` ...) are accepted
too, so the guide's inference command runs as pasted. No NeMo import: the model is the Megatron-Core ``GPTModel``
that trains (``inference/engine.py``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from nemo_cosmos_ar.model.presets import PRESETS

DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32"}
TOKENIZER_DIR = "Cosmos-Tokenize1-DV8x16x16-720p"

DESCRIPTION = """Generate a 33-frame video (25 fps MP4) from an image or a video with a Cosmos-Predict1 base
autoregressive model (4B or 12B, a post-trained export of one, or the NeMo checkpoint of a post-training run), as
cosmos-predict1's `autoregressive/inference/base.py` does. The input is resized to cover the model resolution
(640x1024 for the released models), centre-cropped, padded to 33 frames with its last frame and tokenized with the
DV8x16x16 tokenizer; the first latent frame (image) or two (9-frame video) are the prompt, the model samples the
other 10,240 / 7,680 tokens one at a time with a KV cache (temperature + top-p, seeded, drawn as cosmos-predict1 draws
them), and a decoder turns the whole grid back into frames. Under `torchrun --nproc-per-node N` with --num-gpus N
the model runs tensor-parallel over N GPUs (Megatron-Core), with the same tokens as one GPU.

The decoder is NVIDIA's default, the 7B diffusion decoder (Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p: a
video diffusion transformer samples CV8x8x8 latents from the tokens in 15 guided steps, seeded with --seed, and the
Cosmos-Tokenize1-CV8x8x8-720p decoder makes the frames), when its weights are under --checkpoint-dir. Without them
the DV8x16x16 decoder makes the frames (blurrier) and a one-line note says so. --diffusion-decoder makes missing
weights an error, --disable-diffusion-decoder always uses the DV8x16x16 decoder. Under torchrun only rank 0 runs it,
on one GPU (no context parallelism).

Before a video is written, NVIDIA's video guardrails run on it, as in cosmos-predict1: a content safety filter
(SigLIP and a classifier over frames sampled at 2 fps; a video it flags is not written, nor its tokens, and the
command exits 1) and a face blur (RetinaFace detections, each face pixelated). Their weights are looked for under
--checkpoint-dir (default checkpoints, where `cosmos-ar download` puts them); when they are not there the video is
written unfiltered and a one-line warning says so. --guardrail makes missing weights an error, --disable-guardrail
turns the guardrails off. Under torchrun only rank 0 runs them.

Video2World (5B/13B, text prompts) checkpoints are not supported."""

EPILOG = """examples:
  cosmos-ar generate --input robot.mp4 --output outputs/robot.mp4            # last 9 frames -> 33 frames
  cosmos-ar generate --input robot.mp4 --num-input-frames 1                  # from the last frame only
  cosmos-ar generate --input frame.jpg --seed 7 --top-p 0.8 --temperature 1.0
  cosmos-ar generate --checkpoint out/Cosmos-Predict1-4B-Base_post-trained --resolution 384x640 --input clip.mp4
  cosmos-ar generate --checkpoint runs/posttraining/.../checkpoints --input clip.mp4    # newest step=N-last
  cosmos-ar generate --batch-input-path inputs.jsonl --video_save_folder outputs/ --batch-size 4
  torchrun --nproc-per-node 2 -m nemo_cosmos_ar.cli generate --num-gpus 2 --input clip.mp4
  cosmos-ar generate --input robot.mp4 --guardrail          # refuse to start without the guardrail weights
  cosmos-ar generate --input robot.mp4 --disable-guardrail  # no safety filter, no face blur, no warning
  cosmos-ar generate --input robot.mp4 --diffusion-decoder --offload-diffusion-decoder   # required; freed after use
  cosmos-ar generate --input robot.mp4 --disable-diffusion-decoder                       # the DV8x16x16 decoder
  cosmos-ar generate --model tiny --checkpoint tiny/model.pt --tokenizer tiny_tok --input x.png --device cpu

Defaults are cosmos-predict1's: --num-input-frames 9, --temperature 1.0, --top-p 0.8, --seed 0, 25 fps,
--checkpoint / --tokenizer in its checkpoints/ layout, and the diffusion decoder and the guardrails on (when their
weights are found there). A seed reproduces cosmos-predict1's tokens on CPU in fp32, and our own on the same device
and software; the diffusion decoder's noise comes from a CPU generator seeded with --seed. Outputs are written under
a temporary name and renamed at the end; an existing output is refused without --overwrite. Ctrl-C leaves no partial
file (exit 130). See docs/generate.md, docs/diffusion_decoder.md and docs/guardrails.md."""

DV_NOTE = ("cosmos-ar generate: note: {what} decoded by the DV8x16x16 decoder, blurrier than NVIDIA's default: no 7B "
           "diffusion decoder under {folder} (get it with `cosmos-ar download --checkpoint-dir {folder}`, or pass "
           "--disable-diffusion-decoder to silence this)")  # fmt: skip
NOT_FILTERED = ("cosmos-ar generate: warning: {what} NOT safety-filtered: no guardrail weights under {folder} (get "
                "them with `cosmos-ar download --checkpoint-dir {folder}`, or pass --disable-guardrail to silence "
                "this)")  # fmt: skip


class _Spelling(argparse.Action):
    """Stores like argparse's own actions and remembers when a cosmos-predict1 spelling (with ``_``) was used."""

    def __init__(self, option_strings, dest, flag: bool = False, **kw) -> None:
        if flag:
            kw.update(nargs=0, default=False)
        self.flag = flag
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True if self.flag else values)
        if option_string and "_" in option_string:
            namespace.guide_spelling = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nemo_cosmos_ar.cli.describe import parse_resolution
    from nemo_cosmos_ar.inference.options import (
        CV_TOKENIZER_DIR,
        DEFAULT_CHECKPOINT,
        DEFAULT_TOKENIZER,
        DIFFUSION_DECODER_DIR,
    )

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description, p.epilog = DESCRIPTION, EPILOG
    p.set_defaults(guide_spelling=False)

    def one_line_error(message: str) -> None:  # argparse prints usage + message; one line is enough
        print(f"cosmos-ar generate: error: {message} (see cosmos-ar generate --help)", file=sys.stderr)
        sys.exit(2)

    p.error = one_line_error
    io = p.add_argument_group("input and output (cosmos-predict1's spellings in brackets)")
    io.add_argument("--input", "--input_image_or_video_path", action=_Spelling, dest="input", type=Path,
                    help="an image (.png/.jpg/...; one prompt frame) or a video (its last --num-input-frames frames) "
                    "[--input_image_or_video_path]")  # fmt: skip
    io.add_argument("--input_type", action=_Spelling,
                    choices=("image", "video", "text_and_image", "text_and_video"),
                    help="cosmos-predict1's input kind; checked against --input (text_* are Video2World: refused)")
    io.add_argument("--prompt-tokens", type=Path, metavar="PATH",
                    help="instead of --input: a grid saved with --save-tokens whose first latent frame(s) are the "
                    "prompt")
    io.add_argument("--batch-input-path", "--batch_input_path", action=_Spelling, dest="batch_input_path",
                    type=Path, metavar="JSONL",
                    help="one video per line of a jsonl file ({\"visual_input\": path, optional \"seed\", "
                    "\"video_save_name\"}), written to --video_save_folder; bad lines are reported and skipped")
    io.add_argument("--num-input-frames", "--num_input_frames", action=_Spelling, dest="num_input_frames", type=int,
                    choices=(1, 9),
                    help="prompt frames taken from the end of a video: 9 (default; 2 latent frames) or 1 (1 latent "
                    "frame); an image is always a one-frame prompt")  # fmt: skip
    io.add_argument("--output", type=Path,
                    help="MP4 to write (33 frames, 25 fps, uint8 RGB); default outputs/output.mp4")
    io.add_argument("--video_save_folder", "--output-folder", action=_Spelling, dest="video_save_folder", type=Path,
                    help="folder of the output: --video_save_name.mp4 in it, or the batch outputs; default outputs/")
    io.add_argument("--video_save_name", action=_Spelling,
                    help="output file name without .mp4 (cosmos-predict1's; default output)")
    io.add_argument("--overwrite", action="store_true", help="replace an existing --output / --save-tokens")
    io.add_argument("--skip-existing", action="store_true",
                    help="batch mode: leave lines whose video already exists alone (resume an interrupted batch)")
    io.add_argument("--save-tokens", type=Path, metavar="PATH",
                    help="also save the token grid [1, 5, H/16, W/16] int64 (torch.save), prompt first; in batch "
                    "mode a folder that gets <video name>.pt")  # fmt: skip
    mo = p.add_argument_group("model")
    mo.add_argument("--checkpoint", type=Path,
                    help="model.pt, iter_*.pt, TP shards *_model_mp_<r>.pt, a Hugging Face folder, or a NeMo "
                    "checkpoint (step=N-last, or a run's checkpoints/ folder); default "
                    f"{DEFAULT_CHECKPOINT}")  # fmt: skip
    mo.add_argument("--checkpoint-dir", "--checkpoint_dir", action=_Spelling, dest="checkpoint_dir", type=Path,
                    metavar="DIR",
                    help="the checkpoints folder (default checkpoints, the layout `cosmos-ar download` writes): the "
                    "diffusion decoder and the guardrail weights are looked for in it; without --checkpoint / "
                    "--tokenizer the model is <checkpoint_dir>/<ar_model_dir> and the tokenizer <checkpoint_dir>/"
                    + TOKENIZER_DIR)  # fmt: skip
    mo.add_argument("--ar_model_dir", action=_Spelling,
                    help="cosmos-predict1's model folder name (default Cosmos-Predict1-4B)")
    mo.add_argument("--model", help=f"architecture: a preset ({', '.join(PRESETS)}) or a config.json; default: the "
                    "checkpoint's own config, else the preset whose shapes the weights have")  # fmt: skip
    mo.add_argument("--tokenizer", type=Path,
                    help=f"DV8x16x16 folder with encoder.jit and decoder.jit; default {DEFAULT_TOKENIZER}")
    mo.add_argument("--tokenizer-backend", choices=("eager", "jit"), default="eager",
                    help="eager: this package's network with the files' weights (any dtype); jit: the TorchScript "
                    "files (their traced dtype only)")  # fmt: skip
    mo.add_argument("--resolution", type=parse_resolution, metavar="HxW",
                    help="output size, multiples of 16; default the model's grid x16 (640x1024 for 4b/12b). Use the "
                    "post-training resolution for a post-trained model (e.g. 384x640)")  # fmt: skip
    sa = p.add_argument_group("sampling")
    sa.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy; default 1.0")
    sa.add_argument("--top-p", "--top_p", action=_Spelling, dest="top_p", type=float,
                    help="nucleus mass in (0, 1]; default 0.8, or none with --top-k (cosmos-predict1 uses one of them)")
    sa.add_argument("--top-k", "--top_k", action=_Spelling, dest="top_k", type=int,
                    help="keep only the k most likely tokens (k >= 1); with --top-p too, top-k is applied first")
    sa.add_argument("--seed", type=int, default=0,
                    help="seed of the sampling generator and of the diffusion decoder's noise; default 0")
    sa.add_argument("--nucleus", choices=("sort", "topk"), default="sort",
                    help="sort: cosmos-predict1's full sort (default); topk: exact pre-filter, see docs/generate.md")
    rt = p.add_argument_group("runtime")
    rt.add_argument("--device", help="cuda, cuda:N or cpu; default cuda when available (torchrun: the rank's GPU)")
    rt.add_argument("--dtype", choices=sorted(DTYPES),
                    help="model, tokenizer and diffusion decoder dtype; default bfloat16 on CUDA (as "
                    "cosmos-predict1), float32 on CPU")  # fmt: skip
    rt.add_argument("--num-gpus", "--num_gpus", action=_Spelling, dest="num_gpus", type=int,
                    help="tensor-parallel size = the number of torchrun processes (default: that number)")
    rt.add_argument("--batch-size", type=int, default=1, help="batch mode: prompts decoded together; default 1")
    rt.add_argument("--offload-ar-model", "--offload_ar_model", dest="offload_ar_model", action=_Spelling, flag=True,
                    help="load the AR model right before generating and delete it after (lower peak memory)")
    rt.add_argument("--offload-tokenizer", "--offload_tokenizer", dest="offload_tokenizer", action=_Spelling, flag=True,
                    help="load the DV8x16x16 tokenizer for encoding, delete it, reload it for decoding (with the "
                    "DV8x16x16 decoder)")  # fmt: skip
    rt.add_argument("--offload_text_encoder_model", action=_Spelling, flag=True,
                    help=argparse.SUPPRESS)  # accepted, nothing to do: the decoder's prompt embedding is precomputed
    rt.add_argument("--no-progress", action="store_true", help="no progress bar")
    ad = p.add_argument_group("decoding engine (see docs/generate.md; the defaults are the fastest exact ones)")
    ad.add_argument("--engine", choices=("mcore", "reference"), default="mcore",
                    help="mcore: the Megatron-Core model that trains, any TP (default); reference: the plain-PyTorch "
                    "yardstick, one process")  # fmt: skip
    ad.add_argument("--no-cuda-graph", action="store_true",
                    help="decode eagerly on a GPU instead of replaying captured CUDA graphs (much slower)")
    ad.add_argument("--attention-bucket", type=int, metavar="N",
                    help="attend to the filled cache rounded up to a multiple of N slots (one graph per length); "
                    "0 = the whole cache")  # fmt: skip
    ad.add_argument("--sample-in-graph", choices=("on", "off"),
                    help="sample inside the captured step (no host work between tokens)")
    gr = p.add_argument_group("guardrails (default: on when their weights are under --checkpoint-dir, else a warning)")
    gr.add_argument("--guardrail", action="store_true",
                    help="require the guardrails: missing weights are an error before any work")
    gr.add_argument("--disable-guardrail", "--disable_guardrail", dest="disable_guardrail", action=_Spelling,
                    flag=True, help="no content safety filter, no face blur, no warning")
    gr.add_argument("--offload-guardrail", "--offload_guardrail_models", dest="offload_guardrail", action=_Spelling,
                    flag=True, help="load the guardrail models right before each use and delete them after")
    dd = p.add_argument_group("diffusion decoder (default: on when its weights are under --checkpoint-dir, else the "
                              "DV8x16x16 decoder and a note)")  # fmt: skip
    dd.add_argument("--diffusion-decoder", action="store_true",
                    help="require the 7B diffusion decoder: missing weights are an error before any work")
    dd.add_argument("--disable-diffusion-decoder", "--disable_diffusion_decoder", dest="disable_diffusion_decoder",
                    action=_Spelling, flag=True,
                    help="decode with the DV8x16x16 decoder (blurrier, faster, less memory), no note")  # fmt: skip
    dd.add_argument("--diffusion-decoder-dir", type=Path, metavar="DIR",
                    help=f"folder with model.pt and aux_vars.pt; default <checkpoint-dir>/{DIFFUSION_DECODER_DIR}; "
                    "giving it (or --cv-tokenizer) requires the decoder")  # fmt: skip
    dd.add_argument("--cv-tokenizer", type=Path, metavar="DIR",
                    help=f"folder with the CV8x8x8 decoder.jit and mean_std.pt; default <checkpoint-dir>/"
                    f"{CV_TOKENIZER_DIR}")  # fmt: skip
    dd.add_argument("--offload-diffusion-decoder", "--offload_diffusion_decoder", dest="offload_diffusion_decoder",
                    action=_Spelling, flag=True,
                    help="load the diffusion decoder (its DiT and the CV8x8x8 decoder) for each video and delete it "
                    "after")  # fmt: skip


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """``(checkpoint, tokenizer, output)`` from our flags or cosmos-predict1's."""
    from nemo_cosmos_ar.inference.options import DEFAULT_CHECKPOINT, DEFAULT_TOKENIZER

    if args.checkpoint is not None and args.ar_model_dir is not None:
        raise ValueError("pass either --checkpoint or --ar_model_dir (with --checkpoint_dir), not both")
    ckpt_dir = args.checkpoint_dir or Path("checkpoints")
    checkpoint = args.checkpoint or (ckpt_dir / args.ar_model_dir if args.ar_model_dir else
                                     ckpt_dir / Path(DEFAULT_CHECKPOINT).relative_to("checkpoints"))  # fmt: skip
    tokenizer = args.tokenizer or (ckpt_dir / TOKENIZER_DIR if args.checkpoint_dir else Path(DEFAULT_TOKENIZER))
    if args.output is not None and (args.video_save_name or args.video_save_folder):
        raise ValueError("pass either --output or --video_save_name / --video_save_folder, not both")
    output = args.output or (args.video_save_folder or Path("outputs")) / f"{args.video_save_name or 'output'}.mp4"
    return checkpoint, tokenizer, output


def guardrail_dir(args: argparse.Namespace) -> Path | None:
    """The folder whose guardrail weights to run, or None: off with --disable-guardrail; with --guardrail always
    the folder (missing weights are then an error, raised by the pipeline's checks); by default the folder when its
    weights are found there."""
    folder = args.checkpoint_dir or Path("checkpoints")
    if args.disable_guardrail:
        if args.guardrail:
            raise ValueError("pass either --guardrail or --disable-guardrail, not both")
        return None
    if args.guardrail:
        return folder
    from nemo_cosmos_ar.guardrails.paths import find_guardrail_files

    try:
        find_guardrail_files(folder)
    except FileNotFoundError:
        return None
    return folder


def diffusion_decoder_dirs(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """``(decoder folder, CV8x8x8 folder)`` of the diffusion decoder, or ``(None, None)`` for the DV8x16x16 decoder:
    off with --disable-diffusion-decoder; asked for (--diffusion-decoder, --diffusion-decoder-dir or --cv-tokenizer):
    the folders, whose files the pipeline's checks then require; by default the folders when the decoder's
    ``model.pt`` is found."""
    from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR

    root = args.checkpoint_dir or Path("checkpoints")
    asked = args.diffusion_decoder or args.diffusion_decoder_dir is not None or args.cv_tokenizer is not None
    if args.disable_diffusion_decoder:
        if asked:
            raise ValueError("pass either --diffusion-decoder (--diffusion-decoder-dir, --cv-tokenizer) or "
                             "--disable-diffusion-decoder, not both")  # fmt: skip
        return None, None
    folder = args.diffusion_decoder_dir or root / DIFFUSION_DECODER_DIR
    if asked or (folder / "model.pt").is_file():
        return folder, args.cv_tokenizer or root / CV_TOKENIZER_DIR
    return None, None


def options_from_args(args: argparse.Namespace):
    """A ``GenerateOptions`` from parsed arguments."""
    import os

    import torch

    from nemo_cosmos_ar.inference.generator import DecodeOptions
    from nemo_cosmos_ar.inference.options import IMAGE_SUFFIXES, GenerateOptions
    from nemo_cosmos_ar.inference.sampling import SamplingConfig

    if args.input_type in ("text_and_image", "text_and_video"):
        raise ValueError(f"--input_type {args.input_type} is Video2World's (text prompts); only base models "
                         "(image or video input) are supported")  # fmt: skip
    if args.input_type and args.input is not None:
        is_image = args.input.suffix.lower() in IMAGE_SUFFIXES
        if is_image != (args.input_type == "image"):
            raise ValueError(f"--input_type {args.input_type} but {args.input} is "
                             f"{'an image' if is_image else 'not an image'}; fix --input_type or the file")
    if args.batch_input_path is not None and (args.input is not None or args.prompt_tokens is not None):
        raise ValueError("pass either --batch-input-path or a single --input / --prompt-tokens, not both")
    if args.batch_input_path is not None and (args.output is not None or args.video_save_name):
        raise ValueError("batch outputs go to --video_save_folder (names from the jsonl); drop --output / "
                         "--video_save_name")  # fmt: skip
    checkpoint, tokenizer, output = _paths(args)
    dd_dir, cv_dir = diffusion_decoder_dirs(args)
    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
    top_p = args.top_p if args.top_p is not None else (None if args.top_k is not None else 0.8)
    decode = DecodeOptions(step_mode="dynamic" if args.no_cuda_graph else "auto")
    if args.attention_bucket is not None:
        decode.bucket = args.attention_bucket
    if args.sample_in_graph is not None:
        decode.sample_in_graph = args.sample_in_graph == "on"
    decode.__post_init__()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return GenerateOptions(
        input=args.input, output=output, checkpoint=checkpoint, tokenizer=tokenizer, model=args.model,
        num_input_frames=args.num_input_frames or 9, resolution=args.resolution, seed=args.seed, device=args.device,
        dtype=dtype, tokenizer_backend=args.tokenizer_backend, offload_ar_model=args.offload_ar_model,
        offload_tokenizer=args.offload_tokenizer, overwrite=args.overwrite, save_tokens=args.save_tokens,
        prompt_tokens=args.prompt_tokens, progress=not args.no_progress, decode=decode, engine=args.engine,
        num_gpus=args.num_gpus if args.num_gpus is not None else world, batch_size=args.batch_size,
        guardrail_dir=guardrail_dir(args), offload_guardrail=args.offload_guardrail, diffusion_decoder_dir=dd_dir,
        cv_tokenizer=cv_dir, offload_diffusion_decoder=args.offload_diffusion_decoder,
        sampling=SamplingConfig(temperature=args.temperature, top_p=top_p, top_k=args.top_k, nucleus=args.nucleus),
    )  # fmt: skip


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so the same clean-up as Ctrl-C runs (exit code 143)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def run(args: argparse.Namespace) -> int:
    import os

    from nemo_cosmos_ar.inference.pipeline import UnsafeVideo

    rank = int(os.environ.get("RANK", "0"))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args, rank)
    except KeyboardInterrupt as err:
        code = 143 if isinstance(err, Terminated) else 130
        if rank == 0:
            print(f"cosmos-ar generate: {'terminated' if code == 143 else 'interrupted'}; no partial output left "
                  "(finished videos are complete; resume a batch with --skip-existing)", file=sys.stderr)
        return code
    except UnsafeVideo as err:  # a verdict, not a usage error: no "error:"
        if rank == 0:
            print(f"cosmos-ar generate: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, NotADirectoryError) as err:
        if rank == 0:
            print(f"cosmos-ar generate: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except RuntimeError as err:
        if "out of memory" not in str(err).lower():
            raise
        if rank == 0:
            print("cosmos-ar generate: error: out of device memory; try --offload-ar-model --offload-tokenizer "
                  "--offload-diffusion-decoder --offload-guardrail, a smaller --batch-size or more GPUs (--num-gpus)",
                  file=sys.stderr)  # fmt: skip
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, rank: int) -> int:
    opts = options_from_args(args)
    say = (lambda *a: print(*a)) if rank == 0 else (lambda *a: None)
    note = (lambda m: print(m, file=sys.stderr)) if rank == 0 else (lambda m: None)
    unfiltered = opts.guardrail_dir is None and not args.disable_guardrail  # default on, weights not found
    dv_only = opts.diffusion_decoder_dir is None and not args.disable_diffusion_decoder  # the same for the decoder
    folder = args.checkpoint_dir or Path("checkpoints")
    if args.batch_input_path is not None:
        rc, written = _run_batch(args, opts, say)
        if unfiltered and written:
            note(NOT_FILTERED.format(what="these videos are", folder=folder))
        if dv_only and written:
            note(DV_NOTE.format(what="these videos are", folder=folder))
        return rc
    if opts.is_image and args.num_input_frames == 9:
        note("note: an image is a one-frame prompt (--num-input-frames 1)")
    from nemo_cosmos_ar.inference.pipeline import generate_video

    result = generate_video(opts)
    t, h, w = result.tokens.shape[1:]
    s, st = result.seconds, result.stats
    tp = f" on {opts.num_gpus} GPUs (tensor parallel)" if opts.num_gpus > 1 else ""
    say(f"wrote {result.output}: 33 frames at {16 * h}x{16 * w}, 25 fps (grid {t}x{h}x{w}: {st.prompt_tokens} "
        f"prompt + {st.generated_tokens} generated tokens){tp}")  # fmt: skip
    guard = f"guardrails {s['guardrail']:.1f}s, " if opts.guardrail_dir else ""
    dd = result.diffusion
    if dd is not None:  # its loads count in its time when offloaded
        loads = dd.load_network_s + dd.load_tokenizer_s
        decoded = (f"diffusion decode {s['decode']:.1f}s ({len(dd.step_s)} steps, {dd.sample_s:.1f}s; CV8x8x8 "
                   f"decode {dd.tokenizer_decode_s:.1f}s" + (f"; loads {loads:.1f}s)" if loads else ")"))  # fmt: skip
    else:
        decoded = f"DV decode {s['decode']:.1f}s"
    say(f"load {s['load']:.1f}s, encode {s['encode']:.1f}s, prefill {st.prefill_s:.2f}s, decode {st.decode_s:.1f}s "
        f"({st.tokens_per_s:.1f} tokens/s), {decoded}, {guard}write {s['write']:.1f}s")  # fmt: skip
    if opts.save_tokens:
        say(f"tokens [1, {t}, {h}, {w}] int64 -> {opts.save_tokens}")
    if unfiltered:  # after the run, so that an error stays one line
        note(NOT_FILTERED.format(what="the output is", folder=folder))
    if dv_only:
        note(DV_NOTE.format(what="the output is", folder=folder))
    return 0


def _run_batch(args: argparse.Namespace, opts, say) -> tuple[int, int]:
    """``(exit code, videos written)``."""
    from nemo_cosmos_ar.inference.batch import generate_batch

    folder = args.video_save_folder or Path("outputs")
    res = generate_batch(opts, args.batch_input_path, folder, skip_existing=args.skip_existing)
    total = len(res.written) + len(res.failed) + len(res.skipped_existing)
    kept = f", {len(res.skipped_existing)} already there" if res.skipped_existing else ""
    failed = f", {len(res.failed)} failed (line{'s' if len(res.failed) > 1 else ''} " + \
        ", ".join(str(line) for line, _ in res.failed) + ")" if res.failed else ""  # fmt: skip
    say(f"wrote {len(res.written)} of {total} videos to {folder}{kept}{failed}; decode {res.tokens_per_s:.1f} "
        f"tokens/s over batches of up to {opts.batch_size}")  # fmt: skip
    return (1 if res.failed else 0), len(res.written)
