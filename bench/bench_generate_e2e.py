"""Wall time of the whole ``cosmos-ar generate`` for one video (4B AR model + 7B diffusion decoder + tokenizers), with
random weights at the real shapes, one fresh process per configuration.

Writes a checkpoints folder laid out as ``cosmos-ar download`` writes it (unless ``--work-dir`` already holds one):
a random bf16 ``Cosmos-Predict1-4B/model.pt`` (released layout), a random DV8x16x16 tokenizer, the random 7B
diffusion decoder (``model.pt`` + ``aux_vars.pt``) and CV8x8x8 ``decoder.jit`` + ``mean_std.pt`` at the released
sizes (traced in bf16 on the GPU), and a 640x1024 input image; no guardrail weights (``--disable-guardrail``), unless
``--guardrails``: random ones in the released layout that pass every video and find no face (``random_guardrails``;
NVIDIA's ~62 s counts the guardrails; their seconds fall into "other" and "after init"). Then
runs ``cosmos-ar generate`` on the image once per configuration, each in its own Python process (a cold start, as a
user's command), and prints a markdown table: the process's wall time (imports included), generate's own stages
from its timing line (load, encode, AR decode and tokens/s, diffusion or DV decode, write) and the peak GPU memory.

Configurations (``--configs``, comma-separated; default all but the opt-in ``*int8*`` and ``*fp8*`` ones):

* ``dv``: ``--disable-diffusion-decoder`` (the DV8x16x16 decoder);
* ``dd``: the diffusion decoder, everything resident (cosmos-predict1 without offload flags);
* ``dd-offload``: ``--offload-diffusion-decoder``;
* ``dd-offload-all``: ``--offload-ar-model --offload-tokenizer --offload-diffusion-decoder`` (the guide's command);
* ``dd-nosplit``: ``--diffusion-decoder-parallel off`` (with ``--nproc 2``: TP=2 for the AR model, the diffusion
  decoder on GPU 0 alone; ``dd`` then splits its guidance over both GPUs);
* ``dd-int8``: ``--decode-weights int8`` (weight-only int8 AR decode at batch 1; only when asked for: it needs the
  Triton matrix-vector kernel on a GPU);
* ``dd-fp8``: ``--diffusion-decoder-gemm fp8`` (the DiT's projections as e4m3 GEMMs; changes the video);
* ``dd-int8-fp8``: both.
* ``dd-int8-fp8-triton``: both, the int8 products by the Triton kernel instead of the CUDA one.
* ``dd-int8-fp8-cuda``: both, the CUDA int8 kernel without the fusions that are the default at TP=1.
* ``dd-spec15`` / ``dd-spec16`` / ``dd-spec31`` / ``dd-spec32`` / ``dd-spec63`` / ``dd-spec64``: ``--speculative-window
  L`` (opt-in).
* ``dd-spec63-noepi``: ``dd-spec63`` with ``--diffusion-decoder-epilogues off`` (the DiT's GELU and gated residuals
  as separate passes, not in the cuBLAS products before them).

``--input video`` prompts with the last 9 frames of a 12-frame 720x1280 MP4 (``--num-input-frames 9``, the guide's
``--input_type video``: 2 prompt latent frames, 7,680 generated tokens) instead of the image (1 latent frame, 10,240).
``--per-video``: each configuration also in batch mode (``--batch-input-path``, ``--batch-size 1``) over 1 and over
3 lines of the same input, after a discarded batch of 1 that fills the caches: (main(3) - main(1)) / 2 is what one more
video costs once everything is loaded, compiled and captured, the way NVIDIA counts its ~62 s ("after model init").

``--batches LINES:BATCH_SIZE[,...]``: instead of the single runs, batch mode over LINES lines of the same input with
``--batch-size BATCH_SIZE`` (prompts decoded together; ``--decode-weights int8`` needs 1), one process each after a
discarded batch of BATCH_SIZE lines; prints the batch's timing totals and (main() - load - AR compile) / LINES, the
time per video of a many-video job (``BENCH_NO_DISCARD=1``: no discarded batch, for a warm machine).

``--cprofile``: rank 0's main() under cProfile, its 45 largest cumulative entries printed after the table (finds the
"other" time; the profiler slows the Python-heavy parts, so the row's own figures are not comparable).
"other s" is main() less the printed stages (imports inside main, reading the input, waits between ranks...).
"after init s" is main() less the load and the AR compile + capture. Work moved beside a load (the input read, the
prompt's encode) leaves it and may lengthen the load instead: compare main() too.

``--nproc N`` runs each configuration under ``torchrun --nproc-per-node N`` with ``--num-gpus N``; the peak memory is
the largest over the ranks.

Usage::

    python bench/bench_generate_e2e.py --work-dir /tmp/e2e            # H200; keeps the 23 GB of folders for reruns
    python bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd
    python bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8   # bf16 against int8 AR weights
    python bench/bench_generate_e2e.py --smoke                        # CPU, tiny presets (checks the script)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
from nemo_cosmos_ar.conversion import native_io  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder  # noqa: E402
from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR  # noqa: E402
from nemo_cosmos_ar.model.checkpoint_mapping import native_shapes  # noqa: E402
from nemo_cosmos_ar.model.presets import get_preset  # noqa: E402
from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer  # noqa: E402

CONFIGS = {
    "dv": ["--disable-diffusion-decoder"],
    "dd": [],
    "dd-offload": ["--offload-diffusion-decoder"],
    "dd-offload-all": ["--offload-ar-model", "--offload-tokenizer", "--offload-diffusion-decoder"],
    "dd-nosplit": ["--diffusion-decoder-parallel", "off"],  # with --nproc 2: the decoder on GPU 0 alone
    "dd-int8": ["--decode-weights", "int8"],  # opt-in (changes the outputs; needs Triton on a GPU): not a default
    "dd-fp8": ["--diffusion-decoder-gemm", "fp8"],  # opt-in (changes the video): not a default
    "dd-int8-fp8": ["--decode-weights", "int8", "--diffusion-decoder-gemm", "fp8"],
    # the same with the Triton int8 kernel (the default is the CUDA one where it compiles, gemv_cuda.py)
    "dd-int8-fp8-triton": [
        "--decode-weights",
        "int8",
        "--diffusion-decoder-gemm",
        "fp8",
        "--decode-int8-kernel",
        "triton",
    ],
    # the CUDA int8 kernel without the fusions of inference/fused_int8.py (the default at TP=1 has them)
    "dd-int8-fp8-cuda": [
        "--decode-weights",
        "int8",
        "--diffusion-decoder-gemm",
        "fp8",
        "--decode-int8-kernel",
        "cuda",
    ],
    # speculative decoding (opt-in: the same distribution, other draws for a seed), window L; L + 1 = 16 / 32 / 64
    # rows fill the verify attention's 64-row blocks (4 query heads a KV group) and cuBLAS's tiles exactly
    **{f"dd-spec{w}": ["--speculative-window", str(w)] for w in (15, 16, 31, 32, 63, 64)},
    "dd-spec63-noepi": ["--speculative-window", "63", "--diffusion-decoder-epilogues", "off"],
}
DEFAULT_CONFIGS = [c for c in CONFIGS if not any(o in c for o in ("int8", "fp8", "spec"))]
AR_DIR, DV_DIR = "Cosmos-Predict1-4B", "Cosmos-Tokenize1-DV8x16x16-720p"
# The child process: run the command in-process, then report the peak GPU memory it reached.
CHILD = """
import gc, os, sys, time, torch
from nemo_cosmos_ar.cli import main

# the automatic garbage collections of main() (a full one costs ~0.3 s with Megatron-Core imported): count, seconds
# and when the slow ones (full, or over 20 ms) ran, in seconds since main() started (read against the load column)
gcs = {"n": 0, "full": 0, "s": 0.0, "t": 0.0, "slow": []}
def on_gc(phase, info):
    if phase == "start":
        gcs["t"] = time.perf_counter()
    else:
        took = time.perf_counter() - gcs["t"]
        gcs["n"] += 1
        gcs["full"] += info["generation"] == 2
        gcs["s"] += took
        if info["generation"] == 2 or took > 0.02:
            gcs["slow"].append(f"{gcs['t'] - t:.1f}s:gen{info['generation']}:{took:.3f}")
gc.callbacks.append(on_gc)
t = time.perf_counter()
rank = os.environ.get("RANK", "0")
prof = __import__("cProfile").Profile() if os.environ.get("BENCH_CPROFILE") and rank == "0" else None
prof and prof.enable()
rc = main(sys.argv[1:])
prof and prof.disable()
prof and __import__("pstats").Stats(prof).sort_stats("cumulative").print_stats(45)
peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}" if torch.cuda.is_available() else "nan"
print(f"BENCH rank={rank} rc={rc} main_s={time.perf_counter() - t:.2f} peak_gib={peak}", flush=True)
print(f"BENCHGC rank={rank} collections={gcs['n']} full={gcs['full']} seconds={gcs['s']:.3f}", flush=True)
print(f"BENCHGCSLOW rank={rank} {','.join(gcs['slow']) or 'none'}", flush=True)
__import__("nemo_cosmos_ar.cli").cli.finish(rc)  # exit as the console script does
"""
DD_PARTS = re.compile(
    r"diffusion decode [\d.]+s \((?P<steps>\d+) steps, (?P<sample>[\d.]+)s, the first (?P<first>[\d.]+)s; CV8x8x8 decode (?P<cv>[\d.]+)s"
)
TIMING = re.compile(
    r"load (?P<load>[\d.]+)s \((?P<parts>[^)]*)\), encode (?P<encode>[\d.]+)s"
    r"(?: \((?P<beside>[\d.]+)s beside the AR model load\))?, prefill (?P<prefill>[\d.]+)s, "
    r"compile and graph capture (?P<capture>[\d.]+)s, decode (?P<ar>[\d.]+)s "
    r"\((?P<tps>[\d.]+) tokens/s(?:, (?P<forwards>\d+) forwards: [\d.]+ tokens each)?\), (?P<which>diffusion|DV) decode "
    r"(?P<dec>[\d.]+)s.*write "
    r"(?P<write>[\d.]+)s"
)


def random_ar(path: Path, preset: str, device) -> None:
    """A random ``model.pt`` in the released layout, drawn tensor by tensor (no model is built)."""
    cfg = get_preset(preset)
    g = torch.Generator(device=device).manual_seed(0)

    def tensors():
        for key, shape in native_shapes(cfg).items():
            std = 1.0 if "tok_embeddings" in key else 0.02
            t = torch.randn(shape, generator=g, device=device, dtype=torch.bfloat16)
            yield key, (1.0 + 0.1 * t if len(shape) == 1 else std * t).cpu()

    native_io.write_model_pt(path, tensors(), cfg, overwrite=True)


def input_video(root: Path, smoke: bool) -> Path:
    """A 12-frame random MP4 at the input image's size (moving noise, so the encoder sees a real clip)."""
    from nemo_cosmos_ar import video_io

    path = root / "input.mp4"
    if not path.is_file():
        h, w = (80, 120) if smoke else (720, 1280)
        rng = np.random.default_rng(1)
        base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, 8 * i, axis=1) for i in range(12)])
        video_io.write_video(path, torch.from_numpy(frames), fps=25.0, layout="THWC")
    return path


def random_guardrails(ck: Path, smoke: bool) -> None:
    """Random guardrail weights in the released layout under ``ck`` (``--guardrails``), built so that every video
    passes and no face is found, as most real clips: SigLIP so400m (a tiny SigLIP for ``--smoke``) saved as a
    Hugging Face folder, the safety classifier with its last layer zeroed and biased to class 0 ("safe"), and
    RetinaFace-ResNet50 with its class heads zeroed and biased to "background" (random logits would pass thousands
    of boxes to NMS). With the released weights the safety filter costs the same; the face blur costs more per face
    found."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    from nemo_cosmos_ar.guardrails import paths, retinaface, safety

    g = ck / AR_DIR / "guardrail"
    if (g / paths.FACE_DETECTOR).is_file():
        return
    torch.manual_seed(0)
    tiny = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28)
    encoder = SiglipVisionModel(SiglipVisionConfig(**(dict(tiny, patch_size=14) if smoke else safety.SO400M_VISION)))
    encoder.save_pretrained(g / "video_content_safety_filter" / "siglip-so400m-patch14-384")
    clf = safety.SafetyClassifier(input_size=encoder.config.hidden_size)
    last = clf.network.layers[6]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.nn.functional.one_hot(torch.tensor(0), last.bias.numel()).float() * 4)
    torch.save({"model": clf.state_dict()}, g / paths.SAFETY_FILTER)
    net = retinaface.retinaface_resnet50()
    for head in net.ClassHead:
        torch.nn.init.zeros_(head.conv1x1.weight)
        head.conv1x1.bias.data.copy_(torch.tensor([8.0, -8.0]).repeat(head.conv1x1.bias.numel() // 2))
    (g / paths.FACE_DETECTOR).parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, g / paths.FACE_DETECTOR)


def setup(root: Path, smoke: bool) -> tuple[Path, Path]:
    """The checkpoints folder and the input image (written once; reused when present)."""
    ck = root / "checkpoints"
    device = "cpu" if smoke else "cuda"
    if not (ck / AR_DIR / "model.pt").is_file():
        (ck / AR_DIR).mkdir(parents=True, exist_ok=True)
        random_ar(ck / AR_DIR / "model.pt", "tiny" if smoke else "4b", device)
    if not (ck / DV_DIR / "decoder.jit").is_file():
        if smoke:
            write_random_tokenizer(ck / DV_DIR, "tiny", autoencoder=False)
        else:
            write_random_tokenizer(ck / DV_DIR, "dv8x16x16", dtype=torch.bfloat16, device="cuda", autoencoder=False)
    if not (ck / DIFFUSION_DECODER_DIR / "aux_vars.pt").is_file():
        write_random_decoder(ck / DIFFUSION_DECODER_DIR, "tiny" if smoke else "7b", dtype=torch.bfloat16, device=device)
    if not (ck / CV_TOKENIZER_DIR / "mean_std.pt").is_file():
        if smoke:
            write_random_cv_tokenizer(ck / CV_TOKENIZER_DIR, "tiny")
        else:
            write_random_cv_tokenizer(
                ck / CV_TOKENIZER_DIR, "cv8x8x8", dtype=torch.bfloat16, device="cuda", example_shape=(2, 16, 16)
            )
    image = root / "input.png"
    if not image.is_file():
        h, w = (80, 120) if smoke else (720, 1280)  # resized and cropped to the model's 64x96 / 640x1024
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(image)
    return ck, image


SPAWN_TIMEOUT: float | None = None  # --timeout
GUARD_FLAGS = ["--disable-guardrail"]  # [] with --guardrails


def _spawn(argv: list[str], out: Path, nproc: int, env: dict):
    """Run ``cosmos-ar <argv>`` in a fresh process (torchrun with ``nproc`` > 1): (process, wall s, BENCH lines of
    every rank, rank 0's)."""
    if nproc > 1:
        child = out / "bench_child.py"
        child.write_text(CHILD + "\n")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(child)]
        cmd += [*argv, "--num-gpus", str(nproc)]
    else:
        cmd = [sys.executable, "-c", CHILD, *argv]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=SPAWN_TIMEOUT)
    except subprocess.TimeoutExpired as err:  # say what it was doing (e.g. a failed capture: an eager decode)
        tails = [
            (b.decode(errors="replace") if isinstance(b, bytes) else b or "")[-3000:] for b in (err.stdout, err.stderr)
        ]
        raise SystemExit(
            f"generate did not finish within {SPAWN_TIMEOUT} s; its output so far:\n" + "\n".join(tails)
        ) from None
    wall = time.perf_counter() - t
    for line in proc.stderr.splitlines():  # a slower path taken silently would skew the row: show why
        if "decoding eagerly" in line or ("capture" in line.lower() and "fail" in line.lower()):
            print(f"# WARNING from generate: {line.strip()[:300]}", flush=True)
    ranks = re.findall(r"BENCH rank=(\d+) rc=(\d+) main_s=([\d.]+) peak_gib=(\S+)", proc.stdout)
    return proc, wall, ranks, next((r for r in ranks if r[0] == "0"), None)


BATCH_TOTALS = re.compile(
    r"decode (?P<tps>[\d.]+) tokens/s over batches.*\ntotals: load (?P<load>[\d.]+)s, encode (?P<encode>[\d.]+)s, "
    r"prefill (?P<prefill>[\d.]+)s, compile and graph capture (?P<capture>[\d.]+)s, decode (?P<ar>[\d.]+)s, "
    r"video decode (?P<dec>[\d.]+)s, write (?P<write>[\d.]+)s"
)


def run_batch(
    name: str,
    ck: Path,
    inp: Path,
    out: Path,
    n: int,
    extra: list[str],
    nproc: int,
    smoke: bool,
    bs: int = 1,
    detail=None,
) -> float:
    """main() seconds of batch mode over ``n`` lines of the same input (seeds 0..n-1), ``bs`` prompts decoded
    together; ``detail``: a dict that receives the batch's timing totals (``BATCH_TOTALS``' groups, floats)."""
    folder = out / f"{name}_batch{n}"
    shutil.rmtree(folder, ignore_errors=True)
    jsonl = out / f"batch{n}.jsonl"
    jsonl.write_text("".join(json.dumps({"visual_input": str(inp), "seed": i}) + "\n" for i in range(n)))
    argv = ["generate", "--checkpoint-dir", str(ck), "--batch-input-path", str(jsonl), "--video_save_folder"]
    argv += [str(folder), "--batch-size", str(bs), *GUARD_FLAGS, "--no-progress", *CONFIGS[name], *extra]
    if smoke:
        argv += ["--model", "tiny", "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc, _, ranks, bench = _spawn(argv, out, nproc, env)
    if proc.returncode or not bench or bench[1] != "0" or len(list(folder.glob("*.mp4"))) != n:
        raise SystemExit(
            f"{name} batch {n}: failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    if detail is not None:
        m = BATCH_TOTALS.search(proc.stdout)
        if m is None:
            raise SystemExit(f"{name} batch {n}: no timing totals in its output:\n{proc.stdout[-3000:]}")
        detail.update({k: float(v) for k, v in m.groupdict().items()})
    return float(bench[2])


def run_config(
    name: str,
    ck: Path,
    image: Path,
    out: Path,
    smoke: bool,
    seed: int,
    extra: list[str],
    nproc: int = 1,
    cprofile: bool = False,
) -> dict:
    argv = [
        "generate",
        "--checkpoint-dir",
        str(ck),
        "--input",
        str(image),
        "--output",
        str(out / f"{name}.mp4"),
        "--overwrite",
        *GUARD_FLAGS,
        "--no-progress",
        "--seed",
        str(seed),
        *CONFIGS[name],
        *extra,
    ]
    if smoke:
        argv += ["--model", "tiny", "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    if cprofile:
        env["BENCH_CPROFILE"] = "1"
    proc, wall, ranks, bench = _spawn(argv, out, nproc, env)
    timing = TIMING.search(proc.stdout)
    if proc.returncode or not bench or bench[1] != "0" or not timing or len(ranks) != nproc:
        raise SystemExit(
            f"{name}: generate failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    row = {k: float(v) for k, v in timing.groupdict().items() if k not in ("which", "parts") and v is not None}
    gcs = re.search(r"BENCHGC rank=0 collections=(\d+) full=(\d+) seconds=([\d.]+)", proc.stdout)
    row["gc"] = f"{gcs[1]} collections ({gcs[2]} full) took {gcs[3]} s" if gcs else "not reported"
    slow = re.search(r"BENCHGCSLOW rank=0 (\S+)", proc.stdout)
    row["gc"] += f"; the slow ones (start since main():generation:seconds) {slow[1]}" if slow else ""
    staged = row["load"] + row["encode"] + row["prefill"] + row["capture"] + row["ar"] + row["dec"] + row["write"]
    dd = DD_PARTS.search(proc.stdout)
    row.update(
        config=name,
        which=timing["which"],
        parts=timing["parts"],
        wall_s=wall,
        main_s=float(bench[2]),
        peak_gib=max(float(r[3]) for r in ranks),
        sample=float(dd["sample"]) if dd else float("nan"),
        first=float(dd["first"]) if dd else float("nan"),
        cv=float(dd["cv"]) if dd else float("nan"),
        attention=(re.search(r"; attention (\w+)\)", proc.stdout) or [None, "-"])[1],  # the DiT's attention kernel
        # the run's guardrails stage (the load parts name "guardrails" too, so the one before "write")
        guard=(lambda m: f"{m[1]} s (in 'other')" if m else "off")(
            re.search(r"guardrails ([\d.]+)s, write ", proc.stdout)
        ),
        other=float(bench[2]) - staged,
        profile=proc.stdout[proc.stdout.find("function calls") :] if cprofile else "",
    )
    return row


def run_batches(names, spec: str, ck: Path, inp: Path, out: Path, extra: list[str], nproc: int, smoke: bool) -> None:
    """``--batches``: per config and LINES:BATCH_SIZE, one batch-mode process; "per video after init" is main() less
    the load and the AR compile + capture, over the lines (as the single runs' "after init", per video)."""
    print(
        "| config | lines | batch size | main() s | load s | AR compile + capture s | encode s | AR decode s (tokens/s) "
        "| video decode s | write s | per video after init s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name in names:
        for item in spec.split(","):
            lines, bs = (int(v) for v in item.split(":"))
            # the discarded run: the first process of a machine (and of a new batch size) pays the Triton compiles
            if not os.environ.get("BENCH_NO_DISCARD"):  # a warm machine: the compiles fall into the AR compile column
                run_batch(name, ck, inp, out, bs, extra, nproc, smoke, bs)
            d: dict = {}
            main_s = run_batch(name, ck, inp, out, lines, extra, nproc, smoke, bs, d)
            per = (main_s - d["load"] - d["capture"]) / lines
            print(
                f"| {name} | {lines} | {bs} | {main_s:.1f} | {d['load']:.1f} | {d['capture']:.1f} | {d['encode']:.1f} | "
                f"{d['ar']:.1f} ({d['tps']:.1f}) | {d['dec']:.1f} | {d['write']:.1f} | **{per:.1f}** |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny presets on CPU (seconds)")
    parser.add_argument(
        "--configs", default=",".join(DEFAULT_CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}"
    )
    parser.add_argument("--work-dir", type=Path, help="keep the random folders here and reuse them (default: temp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--input", choices=("image", "video"), default="image", help="prompt: an image, or 9 frames of a video"
    )
    parser.add_argument(
        "--per-video", action="store_true", help="also the steady per-video time (batch of 3 less batch of 1)"
    )
    parser.add_argument("--per-video-only", action="store_true", help="--per-video without the single runs")
    parser.add_argument(
        "--batches",
        default="",
        help="batch-mode runs LINES:BATCH_SIZE[,...] (e.g. 4:4,4:1): one process each, after a discarded batch of "
        "BATCH_SIZE lines; prints the totals and the time per video after initialisation; replaces the single runs",
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="write the random folders and the video prompt, then stop"
    )
    parser.add_argument("--cprofile", action="store_true", help="profile rank 0's main() (see the docstring)")
    parser.add_argument("--nproc", type=int, default=1, help="GPUs: run generate under torchrun with --num-gpus N")
    parser.add_argument(
        "--generate-args", default="", help='more generate flags for every run, e.g. "--fused-step off"'
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds per generate run; on expiry print what it wrote so far and stop"
    )
    parser.add_argument(
        "--guardrails", action="store_true", help="with random guardrail weights that pass every video (see setup)"
    )
    args = parser.parse_args()
    global SPAWN_TIMEOUT, GUARD_FLAGS
    SPAWN_TIMEOUT = args.timeout
    GUARD_FLAGS = [] if args.guardrails else ["--disable-guardrail"]
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no GPU: run with --smoke on CPU")
    with contextlib.ExitStack() as stack:
        root = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        ck, image = setup(root, args.smoke)
        if args.guardrails:
            random_guardrails(ck, args.smoke)
        extra = args.generate_args.split()
        if args.input == "video" or args.setup_only:
            video = input_video(root, args.smoke)
            if args.setup_only:
                print(f"# setup {time.perf_counter() - t:.0f}s: {ck}, {image}, {video}")
                return
            image, extra = video, [*extra, "--num-input-frames", "9"]
        print(f"# setup {time.perf_counter() - t:.0f}s (random folders under {ck})", flush=True)
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() and not args.smoke else "CPU"
        print(
            f"# cosmos-ar generate, one {args.input} -> 33 frames, {gpu}, torch {torch.__version__}, seed {args.seed}, "
            f"{args.nproc} process(es)"
        )
        if args.batches:
            run_batches(names, args.batches, ck, image, root, extra, args.nproc, args.smoke)
            return
        print(
            "| config | process wall s | main() s | load s | encode s | prefill s | AR compile + capture s | AR decode s | "
            "tokens/s | decoder | decode s | DiT sampling s (first step) | CV decode s | write s | other s | peak GiB | "
            "after init s |"
        )
        print("| --- " * 17 + "|")
        parts, rows = [], []
        for name in [] if args.per_video_only else names:
            r = run_config(name, ck, image, root, args.smoke, args.seed, extra, args.nproc, args.cprofile)
            more = f"; the encode ran {r['beside']:.1f} s beside the AR model load" if "beside" in r else ""
            if "forwards" in r:  # speculative decoding: the verify forwards of the AR decode
                more += f"; {r['forwards']:.0f} verify forwards"
            parts.append(
                f"# {name}: load = {r['parts']}{more}; DiT attention {r['attention']}; guardrails {r['guard']}; "
                f"in main(), {r['gc']}"
            )
            rows.append(r)
            print(
                f"| {name} | {r['wall_s']:.1f} | {r['main_s']:.1f} | {r['load']:.1f} | {r['encode']:.1f} | "
                f"{r['prefill']:.1f} | {r['capture']:.1f} | {r['ar']:.1f} | {r['tps']:.1f} | {r['which']} | {r['dec']:.1f} | "
                f"{r['sample']:.1f} ({r['first']:.1f}) | {r['cv']:.1f} | {r['write']:.1f} | {r['other']:.1f} | "
                f"{r['peak_gib']:.1f} | {r['main_s'] - r['load'] - r['capture']:.1f} |",
                flush=True,
            )
        print("\n".join(parts))
        if args.per_video or args.per_video_only:
            print(
                "\n| config | batch of 1: main() s | batch of 3: main() s | per further video s |\n|---|---:|---:|---:|"
            )
            for name in names:
                # a discarded batch of 1 first: the first process on a machine pays the Triton compiles and writes
                # the .pyc files, which would make main(1) too long and the difference too short (call i3: 26.1
                # against 35.0 s)
                run_batch(name, ck, image, root, 1, extra, args.nproc, args.smoke)
                one, three = (run_batch(name, ck, image, root, n, extra, args.nproc, args.smoke) for n in (1, 3))
                print(f"| {name} | {one:.1f} | {three:.1f} | **{(three - one) / 2:.1f}** |", flush=True)
        for r in rows:
            if r["profile"]:
                print(f"# {r['config']}: cProfile of rank 0's main()\n{r['profile'][:12000]}")


if __name__ == "__main__":
    main()
