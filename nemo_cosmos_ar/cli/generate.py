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
import contextlib
import gc
import signal
import sys
from pathlib import Path

from nemo_cosmos_ar.cli.generate_args import DTYPES, TOKENIZER_DIR
from nemo_cosmos_ar.cli.generate_args import add_arguments as add_arguments  # the subcommand's flags

DV_NOTE = (
    "cosmos-ar generate: note: {what} decoded by the DV8x16x16 decoder, blurrier than NVIDIA's default: no 7B "
    "diffusion decoder under {folder} (get it with `cosmos-ar download --checkpoint-dir {folder}`, or pass "
    "--disable-diffusion-decoder to silence this)"
)
NOT_FILTERED = (
    "cosmos-ar generate: warning: {what} NOT safety-filtered: no guardrail weights under {folder} (get "
    "them with `cosmos-ar download --checkpoint-dir {folder}`, or pass --disable-guardrail to silence "
    "this)"
)


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """``(checkpoint, tokenizer, output)`` from our flags or cosmos-predict1's."""
    from nemo_cosmos_ar.inference.options import DEFAULT_CHECKPOINT, DEFAULT_TOKENIZER

    if args.checkpoint is not None and args.ar_model_dir is not None:
        raise ValueError("pass either --checkpoint or --ar_model_dir (with --checkpoint_dir), not both")
    ckpt_dir = args.checkpoint_dir or Path("checkpoints")
    checkpoint = args.checkpoint or (
        ckpt_dir / args.ar_model_dir
        if args.ar_model_dir
        else ckpt_dir / Path(DEFAULT_CHECKPOINT).relative_to("checkpoints")
    )
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
            raise ValueError(
                "pass either --diffusion-decoder (--diffusion-decoder-dir, --cv-tokenizer) or "
                "--disable-diffusion-decoder, not both"
            )
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
        raise ValueError(
            f"--input_type {args.input_type} is Video2World's (text prompts); only base models "
            "(image or video input) are supported"
        )
    if args.input_type and args.input is not None:
        is_image = args.input.suffix.lower() in IMAGE_SUFFIXES
        if is_image != (args.input_type == "image"):
            raise ValueError(
                f"--input_type {args.input_type} but {args.input} is "
                f"{'an image' if is_image else 'not an image'}; fix --input_type or the file"
            )
    if args.batch_input_path is not None and (args.input is not None or args.prompt_tokens is not None):
        raise ValueError("pass either --batch-input-path or a single --input / --prompt-tokens, not both")
    if args.batch_input_path is not None and (args.output is not None or args.video_save_name):
        raise ValueError(
            "batch outputs go to --video_save_folder (names from the jsonl); drop --output / --video_save_name"
        )
    checkpoint, tokenizer, output = _paths(args)
    dd_dir, cv_dir = diffusion_decoder_dirs(args)
    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
    top_p = args.top_p if args.top_p is not None else (None if args.top_k is not None else 0.8)
    decode = DecodeOptions(step_mode="dynamic" if args.no_cuda_graph else "auto")
    if args.attention_bucket is not None:
        decode.bucket = args.attention_bucket
    if args.sample_in_graph is not None:
        decode.sample_in_graph = args.sample_in_graph == "on"
    if args.speculative_window and args.batch_size > 1:
        raise ValueError("--speculative-window decodes one video at a time; drop --batch-size or set it to 1")
    decode.speculative, decode.speculative_init = args.speculative_window, args.speculative_init
    decode.__post_init__()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return GenerateOptions(
        input=args.input,
        output=output,
        checkpoint=checkpoint,
        tokenizer=tokenizer,
        model=args.model,
        num_input_frames=args.num_input_frames or 9,
        resolution=args.resolution,
        seed=args.seed,
        device=args.device,
        dtype=dtype,
        tokenizer_backend=args.tokenizer_backend,
        started_at=getattr(args, "started", None),
        decode_attention=args.decode_attention,
        fused_step=args.fused_step,
        decode_gemv=args.decode_gemv,
        decode_pdl=args.decode_pdl,
        decode_reduce=args.decode_reduce,
        decode_weights=args.decode_weights,
        decode_int8_kernel=args.decode_int8_kernel,
        offload_ar_model=args.offload_ar_model,
        offload_tokenizer=args.offload_tokenizer,
        overwrite=args.overwrite,
        save_tokens=args.save_tokens,
        prompt_tokens=args.prompt_tokens,
        progress=not args.no_progress,
        decode=decode,
        engine=args.engine,
        num_gpus=args.num_gpus if args.num_gpus is not None else world,
        batch_size=args.batch_size,
        guardrail_dir=guardrail_dir(args),
        offload_guardrail=args.offload_guardrail,
        diffusion_decoder_dir=dd_dir,
        cv_tokenizer=cv_dir,
        offload_diffusion_decoder=args.offload_diffusion_decoder,
        dd_parallel=args.diffusion_decoder_parallel,
        dd_gemm=args.diffusion_decoder_gemm,
        dd_attention=args.diffusion_decoder_attention,
        dd_epilogues=args.diffusion_decoder_epilogues,
        sampling=SamplingConfig(
            temperature=args.temperature,
            top_p=top_p,
            top_k=args.top_k,
            nucleus=args.nucleus,
            kernel=args.sampling_kernel,
        ),
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so the same clean-up as Ctrl-C runs (exit code 143)."""


def _on_sigterm(signum, frame):
    raise Terminated()


FULL_COLLECTION_EVERY = 100  # generation-1 collections per full one while generate runs (Python's default: 10)


@contextlib.contextmanager
def fewer_full_collections():
    """Python's full (oldest-generation) garbage collections 10x rarer inside the block; young ones unchanged.

    Why: the command imports torch, Megatron-Core and the models' modules (~500 k objects), and every full
    collection scans them all: on the H200 six took 1.1-1.4 s of the command's first 7.5 s, all during the loads,
    none after (BENCHMARKS.md, issue 13; ``bench_generate_e2e.py`` counts them). Young collections still free the
    short-lived cycles, and an explicit ``gc.collect()`` (``runtime.free_memory``, offloading) is unaffected. The
    thresholds are restored on exit, so an in-process caller (tests, notebooks) gets its own back."""
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], max(before[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def run(args: argparse.Namespace) -> int:
    with fewer_full_collections():  # entered before the heavy imports below
        return _run_handled(args)


def _run_handled(args: argparse.Namespace) -> int:
    import os

    from nemo_cosmos_ar.inference.pipeline import UnsafeVideo

    rank = int(os.environ.get("RANK", "0"))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args, rank)
    except KeyboardInterrupt as err:
        code = 143 if isinstance(err, Terminated) else 130
        if rank == 0:
            print(
                f"cosmos-ar generate: {'terminated' if code == 143 else 'interrupted'}; no partial output left "
                "(finished videos are complete; resume a batch with --skip-existing)",
                file=sys.stderr,
            )
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
            print(
                "cosmos-ar generate: error: out of device memory; try --offload-ar-model --offload-tokenizer "
                "--offload-diffusion-decoder --offload-guardrail, a smaller --batch-size or more GPUs (--num-gpus)",
                file=sys.stderr,
            )
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
    if opts.dd_gemm == "fp8" and opts.diffusion_decoder_dir is None:
        note("cosmos-ar generate: note: --diffusion-decoder-gemm fp8 has no effect: the diffusion decoder is off")
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
    say(
        f"wrote {result.output}: 33 frames at {16 * h}x{16 * w}, 25 fps (grid {t}x{h}x{w}: {st.prompt_tokens} "
        f"prompt + {st.generated_tokens} generated tokens){tp}"
    )
    guard = f"guardrails {s['guardrail']:.1f}s, " if opts.guardrail_dir else ""
    dd = result.diffusion
    if dd is not None:  # its loads count in its time when offloaded
        loads = dd.load_network_s + dd.load_tokenizer_s
        decoded = (
            f"diffusion decode {s['decode']:.1f}s ({len(dd.step_s)} steps, {dd.sample_s:.1f}s, the first "
            f"{dd.step_s[0] if dd.step_s else 0.0:.1f}s; CV8x8x8 "
            f"decode {dd.tokenizer_decode_s:.1f}s"
            + (f"; loads {loads:.1f}s" if loads else "")
            + (f"; waited {dd.wait_load_s:.1f}s for its load" if dd.wait_load_s >= 0.05 else "")
            + f"; attention {dd.attention})"
        )
    else:
        decoded = f"DV decode {s['decode']:.1f}s"
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in result.load_parts.items())
    spec = opts.decode.speculative and st.forwards
    say(
        f"load {s['load']:.1f}s ({parts}), encode {s['encode']:.1f}s"
        + (f" ({result.encode_beside_s:.1f}s beside the AR model load)" if result.encode_beside_s else "")
        + f", prefill {st.prefill_s:.2f}s, "
        f"compile and graph capture {max(0.0, s['generate'] - st.prefill_s - st.decode_s):.1f}s, "
        f"decode {st.decode_s:.1f}s "
        f"({st.tokens_per_s:.1f} tokens/s"
        + (f", {st.forwards} forwards: {st.generated_tokens / st.forwards:.2f} tokens each" if spec else "")
        + f"), {decoded}, {guard}write {s['write']:.1f}s"
    )
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
    failed = (
        f", {len(res.failed)} failed (line{'s' if len(res.failed) > 1 else ''} "
        + ", ".join(str(line) for line, _ in res.failed)
        + ")"
        if res.failed
        else ""
    )
    say(
        f"wrote {len(res.written)} of {total} videos to {folder}{kept}{failed}; decode {res.tokens_per_s:.1f} "
        f"tokens/s over batches of up to {opts.batch_size}"
    )
    if res.stats:  # where the time went, summed over the batch (the single run's timing line, in totals)
        s = res.seconds
        prefill, dec = sum(st.prefill_s for st in res.stats), sum(st.decode_s for st in res.stats)
        guard = f"guardrails {s['guardrail']:.1f}s, " if opts.guardrail_dir else ""
        say(
            f"totals: load {s['load']:.1f}s, encode {s['encode']:.1f}s, prefill {prefill:.2f}s, compile and graph "
            f"capture {max(0.0, s['generate'] - prefill - dec):.1f}s, decode {dec:.1f}s, video decode "
            f"{s['decode']:.1f}s, {guard}write {s['write']:.1f}s"
        )
    return (1 if res.failed else 0), len(res.written)
