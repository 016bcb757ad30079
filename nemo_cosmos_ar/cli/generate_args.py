"""The flags of ``cosmos-ar generate`` (``cli/generate.py`` turns them into ``GenerateOptions`` and runs).

cosmos-predict1's spellings (``--input_image_or_video_path``, ``--checkpoint_dir`` ...) are accepted next to ours,
so the guide's inference command runs as pasted (``_Spelling`` notes which one was used).
"""

from __future__ import annotations

import argparse
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
weights an error, --disable-diffusion-decoder always uses the DV8x16x16 decoder. Under torchrun its DiT runs on
GPUs 0 and 1, each one of the two passes of the guidance (about half the sampling time; the same video as one GPU),
and GPU 0 makes the frames; on 4 or more GPUs each pass is also cut by context parallelism over half of them (as
NVIDIA splits its decoder); --diffusion-decoder-parallel guidance keeps GPUs 0 and 1 only, off keeps it on GPU 0.

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
  cosmos-ar generate --input clip.mp4 --decode-weights int8 --diffusion-decoder-gemm fp8
      # one GPU's fastest: 29-30 s after loading on an H200 with flash-attn-4 installed; changes the video
      # slightly (int8 AR weights, e4m3 DiT GEMMs)
  torchrun --nproc-per-node 2 -m nemo_cosmos_ar.cli generate --num-gpus 2 --input clip.mp4 --decode-weights int8
      --diffusion-decoder-gemm fp8     # (one command) the fastest measured; changes the video slightly
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
    from nemo_cosmos_ar.inference import symm_reduce
    from nemo_cosmos_ar.inference.engine import INT8_KERNELS
    from nemo_cosmos_ar.inference.options import (
        CV_TOKENIZER_DIR,
        DD_ATTENTION,
        DD_PARALLEL,
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
    io.add_argument(
        "--input",
        "--input_image_or_video_path",
        action=_Spelling,
        dest="input",
        type=Path,
        help="an image (.png/.jpg/...; one prompt frame) or a video (its last --num-input-frames frames) "
        "[--input_image_or_video_path]",
    )
    io.add_argument(
        "--input_type",
        action=_Spelling,
        choices=("image", "video", "text_and_image", "text_and_video"),
        help="cosmos-predict1's input kind; checked against --input (text_* are Video2World: refused)",
    )
    io.add_argument(
        "--prompt-tokens",
        type=Path,
        metavar="PATH",
        help="instead of --input: a grid saved with --save-tokens whose first latent frame(s) are the prompt",
    )
    io.add_argument(
        "--batch-input-path",
        "--batch_input_path",
        action=_Spelling,
        dest="batch_input_path",
        type=Path,
        metavar="JSONL",
        help='one video per line of a jsonl file ({"visual_input": path, optional "seed", '
        '"video_save_name"}), written to --video_save_folder; bad lines are reported and skipped',
    )
    io.add_argument(
        "--num-input-frames",
        "--num_input_frames",
        action=_Spelling,
        dest="num_input_frames",
        type=int,
        choices=(1, 9),
        help="prompt frames taken from the end of a video: 9 (default; 2 latent frames) or 1 (1 latent "
        "frame); an image is always a one-frame prompt",
    )
    io.add_argument(
        "--output", type=Path, help="MP4 to write (33 frames, 25 fps, uint8 RGB); default outputs/output.mp4"
    )
    io.add_argument(
        "--video_save_folder",
        "--output-folder",
        action=_Spelling,
        dest="video_save_folder",
        type=Path,
        help="folder of the output: --video_save_name.mp4 in it, or the batch outputs; default outputs/",
    )
    io.add_argument(
        "--video_save_name", action=_Spelling, help="output file name without .mp4 (cosmos-predict1's; default output)"
    )
    io.add_argument("--overwrite", action="store_true", help="replace an existing --output / --save-tokens")
    io.add_argument(
        "--skip-existing",
        action="store_true",
        help="batch mode: leave lines whose video already exists alone (resume an interrupted batch)",
    )
    io.add_argument(
        "--save-tokens",
        type=Path,
        metavar="PATH",
        help="also save the token grid [1, 5, H/16, W/16] int64 (torch.save), prompt first; in batch "
        "mode a folder that gets <video name>.pt",
    )
    mo = p.add_argument_group("model")
    mo.add_argument(
        "--checkpoint",
        type=Path,
        help="model.pt, iter_*.pt, TP shards *_model_mp_<r>.pt, a Hugging Face folder, or a NeMo "
        "checkpoint (step=N-last, or a run's checkpoints/ folder); default "
        f"{DEFAULT_CHECKPOINT}",
    )
    mo.add_argument(
        "--checkpoint-dir",
        "--checkpoint_dir",
        action=_Spelling,
        dest="checkpoint_dir",
        type=Path,
        metavar="DIR",
        help="the checkpoints folder (default checkpoints, the layout `cosmos-ar download` writes): the "
        "diffusion decoder and the guardrail weights are looked for in it; without --checkpoint / "
        "--tokenizer the model is <checkpoint_dir>/<ar_model_dir> and the tokenizer <checkpoint_dir>/" + TOKENIZER_DIR,
    )
    mo.add_argument(
        "--ar_model_dir", action=_Spelling, help="cosmos-predict1's model folder name (default Cosmos-Predict1-4B)"
    )
    mo.add_argument(
        "--model",
        help=f"architecture: a preset ({', '.join(PRESETS)}) or a config.json; default: the "
        "checkpoint's own config, else the preset whose shapes the weights have",
    )
    mo.add_argument(
        "--tokenizer", type=Path, help=f"DV8x16x16 folder with encoder.jit and decoder.jit; default {DEFAULT_TOKENIZER}"
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
    sa.add_argument(
        "--top-p",
        "--top_p",
        action=_Spelling,
        dest="top_p",
        type=float,
        help="nucleus mass in (0, 1]; default 0.8, or none with --top-k (cosmos-predict1 uses one of them)",
    )
    sa.add_argument(
        "--top-k",
        "--top_k",
        action=_Spelling,
        dest="top_k",
        type=int,
        help="keep only the k most likely tokens (k >= 1); with --top-p too, top-k is applied first",
    )
    sa.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the sampling generator and of the diffusion decoder's noise; default 0",
    )
    sa.add_argument(
        "--nucleus",
        choices=("sort", "topk"),
        default="sort",
        help="sort: cosmos-predict1's full sort (default); topk: exact pre-filter, see docs/generate.md",
    )
    sa.add_argument(
        "--sampling-kernel",
        choices=("auto", "torch"),
        default="auto",
        help="auto: on CUDA the top-p draw is one sort + three small Triton kernels (the same random numbers, sums "
        "in another order; 112 -> 41 us a token on an H200); speculative decoding's top-p distributions, "
        "residual draws and proposals as Triton kernels too (no sort); torch: cosmos-predict1's ops everywhere. "
        "See docs/generate.md",
    )
    rt = p.add_argument_group("runtime")
    rt.add_argument("--device", help="cuda, cuda:N or cpu; default cuda when available (torchrun: the rank's GPU)")
    rt.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        help="model, tokenizer and diffusion decoder dtype; default bfloat16 on CUDA (as "
        "cosmos-predict1), float32 on CPU",
    )
    rt.add_argument(
        "--num-gpus",
        "--num_gpus",
        action=_Spelling,
        dest="num_gpus",
        type=int,
        help="tensor-parallel size = the number of torchrun processes (default: that number)",
    )
    rt.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="batch mode: prompts decoded together (default 1, each video as its single run). For many videos use 8: "
        "one H200 then makes one every ~28 s in bf16 (~23 s with --diffusion-decoder-gemm fp8) against ~45 s alone; "
        "on a GPU a batched row may differ from its single run in bf16 rounding, so in sampled tokens",
    )
    rt.add_argument(
        "--offload-ar-model",
        "--offload_ar_model",
        dest="offload_ar_model",
        action=_Spelling,
        flag=True,
        help="load the AR model right before generating and delete it after (lower peak memory)",
    )
    rt.add_argument(
        "--offload-tokenizer",
        "--offload_tokenizer",
        dest="offload_tokenizer",
        action=_Spelling,
        flag=True,
        help="load the DV8x16x16 tokenizer for encoding, delete it, reload it for decoding (with the "
        "DV8x16x16 decoder)",
    )
    rt.add_argument(
        "--offload_text_encoder_model", action=_Spelling, flag=True, help=argparse.SUPPRESS
    )  # accepted, nothing to do: the decoder's prompt embedding is precomputed
    rt.add_argument("--no-progress", action="store_true", help="no progress bar")
    ad = p.add_argument_group("decoding engine (see docs/generate.md; the defaults are the fastest exact ones)")
    ad.add_argument(
        "--engine",
        choices=("mcore", "reference"),
        default="mcore",
        help="mcore: the Megatron-Core model that trains, any TP (default); reference: the plain-PyTorch "
        "yardstick, one process",
    )
    ad.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="decode eagerly on a GPU instead of replaying captured CUDA graphs (much slower)",
    )
    ad.add_argument(
        "--attention-bucket",
        type=int,
        metavar="N",
        help="attend to the filled cache rounded up to a multiple of N slots (one graph per length); "
        "0 = the whole cache",
    )
    ad.add_argument(
        "--sample-in-graph", choices=("on", "off"), help="sample inside the captured step (no host work between tokens)"
    )
    ad.add_argument(
        "--speculative-window",
        type=int,
        default=0,
        metavar="L",
        help="speculative Jacobi decoding: verify L draft tokens per forward, drafts re-drawn by maximal coupling "
        "(docs/generate.md). The tokens follow the model's distribution exactly, but a seed draws other tokens than "
        "the one-token decoder (greedy: the same tokens). How many tokens a forward accepts depends on the weights: "
        "`cosmos-ar check-precision` measures it on yours. 63 or 31 suit the H200 (L + 1 rows fill the verify "
        "kernel's blocks). Batch 1; 0 (default) = off",
    )
    ad.add_argument(
        "--speculative-init",
        choices=("previous-frame", "random"),
        default="previous-frame",
        help="with --speculative-window, a new draft: the token one latent frame back (default) or a random token",
    )
    ad.add_argument(
        "--decode-attention",
        choices=("auto", "sdpa", "triton", "gemm", "flex"),
        default="auto",
        help="decode-step attention: auto = the Triton split-K kernel on CUDA when Triton imports, else SDPA",
    )
    ad.add_argument(
        "--fused-step",
        choices=("auto", "on", "off"),
        default="auto",
        help="fuse the decode step's norms, RoPE, residual adds and SwiGLU between the GEMMs (torch.compile on "
        "CUDA); auto = on on CUDA",
    )
    ad.add_argument(
        "--decode-gemv",
        choices=("auto", "on", "off"),
        default="auto",
        help="at batch 1, run the fused step's projections as a Triton matrix-vector kernel instead of cuBLAS "
        "(faster on an H200); auto = on on CUDA when Triton imports",
    )
    ad.add_argument(
        "--decode-pdl",
        choices=("auto", "on", "off"),
        default="auto",
        help="launch the fused step's Triton kernels with programmatic dependent launch (each starts while the one "
        "before drains); auto = on on Hopper or later GPUs",
    )
    ad.add_argument(
        "--decode-reduce",
        choices=symm_reduce.MODES,
        default="auto",
        help="at --num-gpus > 1, the batch-1 step's tensor-parallel all-reduces: symm = torch's symmetric-memory "
        "one-shot kernel (lower latency for one token's rows over NVLink; not yet measured), nccl = the process "
        "group's; auto = nccl",
    )
    ad.add_argument(
        "--decode-weights",
        choices=("bf16", "int8"),
        default="bf16",
        help="int8: weight-only int8, one scale per output channel, for the batch-1 decode's matrix-vector products "
        "(half the weight bytes per token: 665-669 against 439-442 tokens/s for the 4B on an H200; +~4 GB); off by "
        "default because it changes the outputs (prefill and checks then use the dequantized weights too; measure "
        "the change on your weights with `cosmos-ar check-precision`); needs --decode-gemv and --batch-size 1",
    )
    ad.add_argument(
        "--decode-int8-kernel",
        choices=INT8_KERNELS,
        default="auto",
        help="with --decode-weights int8, the kernel of its products: cuda = a hand-written CUDA kernel compiled at "
        "start-up by torch's NVRTC (10%% faster per layer than triton on an H200), fused = cuda with an RMSNorm, the "
        "residual adds and the SwiGLU folded into it (TP=1; 0.1-1.3%% faster decode), triton = the Triton kernel; auto = "
        "fused at TP=1, else cuda, where the kernel compiles, else triton",
    )
    gr = p.add_argument_group("guardrails (default: on when their weights are under --checkpoint-dir, else a warning)")
    gr.add_argument(
        "--guardrail", action="store_true", help="require the guardrails: missing weights are an error before any work"
    )
    gr.add_argument(
        "--disable-guardrail",
        "--disable_guardrail",
        dest="disable_guardrail",
        action=_Spelling,
        flag=True,
        help="no content safety filter, no face blur, no warning",
    )
    gr.add_argument(
        "--offload-guardrail",
        "--offload_guardrail_models",
        dest="offload_guardrail",
        action=_Spelling,
        flag=True,
        help="load the guardrail models right before each use and delete them after",
    )
    dd = p.add_argument_group(
        "diffusion decoder (default: on when its weights are under --checkpoint-dir, else the "
        "DV8x16x16 decoder and a note)"
    )
    dd.add_argument(
        "--diffusion-decoder",
        action="store_true",
        help="require the 7B diffusion decoder: missing weights are an error before any work",
    )
    dd.add_argument(
        "--disable-diffusion-decoder",
        "--disable_diffusion_decoder",
        dest="disable_diffusion_decoder",
        action=_Spelling,
        flag=True,
        help="decode with the DV8x16x16 decoder (blurrier, faster, less memory), no note",
    )
    dd.add_argument(
        "--diffusion-decoder-dir",
        type=Path,
        metavar="DIR",
        help=f"folder with model.pt and aux_vars.pt; default <checkpoint-dir>/{DIFFUSION_DECODER_DIR}; "
        "giving it (or --cv-tokenizer) requires the decoder",
    )
    dd.add_argument(
        "--cv-tokenizer",
        type=Path,
        metavar="DIR",
        help=f"folder with the CV8x8x8 decoder.jit and mean_std.pt; default <checkpoint-dir>/{CV_TOKENIZER_DIR}",
    )
    dd.add_argument(
        "--offload-diffusion-decoder",
        "--offload_diffusion_decoder",
        dest="offload_diffusion_decoder",
        action=_Spelling,
        flag=True,
        help="load the diffusion decoder (its DiT and the CV8x8x8 decoder) for each video and delete it after",
    )
    dd.add_argument(
        "--diffusion-decoder-parallel",
        choices=DD_PARALLEL,
        default="auto",
        help="auto (default): on 2 or more GPUs (torchrun), GPU 0 runs the conditional and GPU 1 the unconditional "
        "pass of each guided step, swapping the results (the 7B is then loaded on both; the video is the one GPU's); "
        "on 4 or more, the even GPUs share the conditional and the odd ones the unconditional pass, each holding a "
        "slice of the tokens (context parallelism; the 7B on every GPU); guidance: GPUs 0 and 1 only; off: GPU 0 "
        "runs both",
    )
    dd.add_argument(
        "--diffusion-decoder-gemm",
        choices=("bf16", "fp8"),
        default="bf16",
        help="fp8: the DiT's attention and MLP projections as e4m3 GEMMs, one scale per weight row and per token "
        "(Hopper or later GPUs; see BENCHMARKS.md for the measured speed and the change in the video); off by "
        "default because it changes the video (`cosmos-ar check-precision` measures the change on your weights)",
    )
    dd.add_argument(
        "--diffusion-decoder-attention",
        choices=DD_ATTENTION,
        default="auto",  # the DiT's attention kernel
        help="the DiT's attention kernel. auto (default): FlashAttention-4 when it is installed (pip install "
        "flash-attn-4) on a Hopper or Blackwell GPU, else torch SDPA (cuDNN first); sdpa; fa4 (an error where it "
        "cannot run). The same attention either way, up to bf16 rounding; FA4's import (5-16 s) overlaps the loads",
    )
    dd.add_argument(
        "--diffusion-decoder-epilogues",
        choices=("auto", "off"),
        default="auto",
        help="auto (default): with bf16 GEMMs on a GPU, the DiT's GELU and gated residuals are computed by the "
        "cuBLAS products before them (fewer passes over the activations; the same maths up to bf16 rounding, the "
        "GELU as its tanh approximation); off: separate passes",
    )
