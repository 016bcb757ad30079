"""Where ``cosmos-ar generate``'s "setup" goes: each step of ``Runner.__init__`` (``inference/pipeline.py``) timed
alone, in the pipeline's order, in this (fresh) process.

The steps: ``import torch`` (before setup, for scale), ``checks.check_device``, the Megatron-Core import
(``engine._quiet_megatron_import``: ``megatron.core`` alone first, then the GPT model, tensor-parallel and our layer
spec; ``--build-extension`` imports it as before the fix, letting Megatron build its ``managed_alloc_runtime`` C++
extension, ~20 s on a fresh machine with a CUDA toolkit), the rest of ``engine.init_parallel`` (process group, Megatron's parallel state, CUDA RNG tracker), then
``ck.open_checkpoint`` split into the first ``torch.load(..., mmap=True)`` of the file and the architecture check, and
the small checks after it (``output_resolution`` .. ``check_tp``). Prints a markdown table; ``--profile STEP`` adds a
cProfile of that step (top functions by cumulative time).

Usage::

    python bench/bench_generate_setup.py --checkpoint /tmp/e2e/checkpoints/Cosmos-Predict1-4B/model.pt   # H200
    python bench/bench_generate_setup.py --smoke                                   # CPU, a tiny random model.pt
    python bench/bench_generate_setup.py --checkpoint /tmp/ar/model.pt --write 4b   # an 8 GB random 4B model.pt
    python bench/bench_generate_setup.py --checkpoint ... --device cpu --profile mcore,open
"""

from __future__ import annotations

import time

T0 = time.perf_counter()
import torch  # noqa: E402

T_TORCH = time.perf_counter() - T0

import argparse  # noqa: E402
import contextlib  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, help="a model.pt (or folder) as generate gets it")
    p.add_argument("--model", default=None, help="--model as generate gets it (default: none, as the e2e bench)")
    p.add_argument("--device", default=None, help="default: cuda when present")
    p.add_argument("--engine", default="mcore", choices=("mcore", "reference"))
    p.add_argument("--smoke", action="store_true", help="a tiny random model.pt on the CPU")
    p.add_argument("--profile", default="", help="cProfile these steps (comma-separated row name prefixes: mcore,open)")
    p.add_argument(
        "--build-extension",
        action="store_true",
        help="import megatron.core unguarded (it builds its managed_alloc_runtime C++ extension, as before the fix)",
    )
    p.add_argument("--write", metavar="PRESET", help="write a random --checkpoint of this preset (bf16) and exit")
    args = p.parse_args()
    if args.write:
        write_random(args.checkpoint, args.write)
        return

    rows: list[tuple[str, float]] = [("import torch", T_TORCH)]
    prof_out: list[str] = []

    @contextlib.contextmanager
    def step(name: str):
        wanted = [x for x in args.profile.split(",") if x]
        prof = cProfile.Profile() if any(name.startswith(x) for x in wanted) else None
        t = time.perf_counter()
        if prof:
            prof.enable()
        yield
        if prof:
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
            prof_out.append(f"### cProfile: {name}\n\n```\n{s.getvalue()}\n```")
        rows.append((name, time.perf_counter() - t))

    with step("import nemo_cosmos_ar.inference.pipeline"):
        from nemo_cosmos_ar.inference import checkpoints as ck
        from nemo_cosmos_ar.inference import checks, pipeline
        from nemo_cosmos_ar.inference import generator as gen
        from nemo_cosmos_ar.model.config import latent_shape_for

    tmp = None
    if args.smoke:
        tmp = tempfile.TemporaryDirectory()
        from nemo_cosmos_ar.conversion import native_io
        from nemo_cosmos_ar.model.checkpoint_mapping import native_shapes
        from nemo_cosmos_ar.model.presets import get_preset

        cfg = get_preset("tiny")
        args.checkpoint = Path(tmp.name) / "model.pt"
        native_io.write_model_pt(
            args.checkpoint, ((k, torch.full(s, 0.02)) for k, s in native_shapes(cfg).items()), cfg
        )
        args.device = args.device or "cpu"
    if args.checkpoint is None:
        p.error("--checkpoint is required (or --smoke)")

    total = time.perf_counter()
    with step("check_device"):
        device = checks.check_device(args.device)
    if args.engine == "mcore":
        from nemo_cosmos_ar.inference import engine as en

        if args.build_extension:  # Megatron's import as it was before engine.skip_megatron_extension_builds
            with step("mcore: import megatron.core (+ its managed_alloc_runtime build)"):
                import megatron.core  # noqa: F401
        else:
            with step("mcore: import megatron.core (extension build skipped)"), en.skip_megatron_extension_builds():
                import megatron.core  # noqa: F401
        with step("mcore: import gpt/tensor_parallel/layer_spec"):
            en._quiet_megatron_import()
        with step("mcore: init_parallel (process group, parallel state)"):
            device = en.init_parallel(1, device)
    with step("open_checkpoint: nemo_checkpoint_dir"):
        nemo = ck.nemo_checkpoint_dir(args.checkpoint)
    if nemo is None:
        with step("open_checkpoint: load_native (torch.load mmap)"):
            native = ck.native_io.load_native(args.checkpoint)
        with step("open_checkpoint: resolve_native (shape check)"):
            ck.resolve_native(native, args.model)
        del native
    with step("open_checkpoint (whole, 2nd time)"):
        ckpt = ck.open_checkpoint(args.checkpoint, args.model)
    with step("output_resolution .. with_latent_shape"):
        h, w = pipeline.output_resolution(ckpt.cfg, None)
        grid = latent_shape_for(gen.NUM_OUTPUT_FRAMES, h, w)
        checks.check_grid(grid, ckpt.cfg.latent_shape, h, w)
        ckpt = ckpt.with_latent_shape(grid)
    if args.engine == "mcore":
        with step("check_tp"):
            en.check_tp(ckpt.cfg, 1)
    total = time.perf_counter() - total

    nbytes = sum(f.stat().st_size for f in ckpt._native.files) if ckpt._native else 0
    print(
        f"\nsetup steps; device {device}, {ckpt.cfg.name} ({ckpt.cfg.num_params() / 1e9:.2f} B params, "
        f"{nbytes / 2**30:.2f} GiB file), torch {torch.__version__}\n"
    )
    print("| step | seconds |\n| --- | --- |")
    for name, s in rows:
        print(f"| {name} | {s:.3f} |")
    print(f"| **setup total** (check_device .. check_tp, incl. the 2nd open) | {total:.3f} |")
    for block in prof_out:
        print("\n" + block)
    if tmp:
        tmp.cleanup()


def write_random(path: Path, preset: str) -> None:
    """A ``model.pt`` in the released layout (bf16, ``model.`` keys); constant values: setup never reads them."""
    from nemo_cosmos_ar.conversion import native_io
    from nemo_cosmos_ar.model.checkpoint_mapping import native_shapes
    from nemo_cosmos_ar.model.presets import get_preset

    cfg = get_preset(preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = ((k, torch.full(s, 0.02, dtype=torch.bfloat16)) for k, s in native_shapes(cfg).items())
    native_io.write_model_pt(path, tensors, cfg, overwrite=True)


if __name__ == "__main__":
    main()
