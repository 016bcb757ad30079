"""``make demo``: the whole post-training workflow, end to end, on a CPU with the tiny model.

Every step runs the user-facing command in a subprocess, exactly as the README shows it:

1. sample videos (camera moves over photographs shipped with installed packages, and a small simulation);
2. a random-weight DV8x16x16 tokenizer and a random tiny base model, both in NVIDIA's released file formats
   (``encoder.jit``/``decoder.jit``; flat bf16 ``model.pt`` with ``model.`` keys + ``config.json``);
3. ``cosmos-ar convert import``  model.pt -> NeMo distributed checkpoint;
4. ``cosmos-ar prepare-data``   MP4s -> token dataset (17 frames at 64x96 -> 3x4x6 tokens per clip);
5. ``nemo llm finetune --factory cosmos_ar_tiny_cpu``  post-training from the imported checkpoint;
6. ``cosmos-ar convert export``  last checkpoint -> ``model.pt`` for cosmos-predict1, read back by the importer.

    python -m nemo_cosmos_ar.demo [--out demo_out] [--steps 60] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

NEMO = [sys.executable, "-c", "import sys; sys.argv[0] = 'nemo'; from nemo_run.__main__ import app; app()"]
COSMOS = [sys.executable, "-m", "nemo_cosmos_ar.cli"]


def _step(title: str, cmd: list[str], log: Path, env: dict | None = None) -> str:
    print(f"\n==> {title}\n    $ {' '.join(c if ' ' not in c else repr(c) for c in cmd)}", flush=True)
    t0 = time.time()
    e = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=e)
    log.write_text(proc.stdout + "\n----- stderr -----\n" + proc.stderr)
    if proc.returncode != 0:
        print(proc.stdout[-3000:] + proc.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"demo step failed ({title}); full log: {log}")
    print(f"    done in {time.time() - t0:.0f}s (log: {log})", flush=True)
    return proc.stdout


def make_base_model(folder: Path, seed: int = 0) -> Path:
    """A random tiny Cosmos AR model in the released layout: folder/model.pt (bf16, ``model.`` keys) + config.json."""
    from nemo_cosmos_ar.conversion.native_io import iter_native, write_native_dir
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer

    cfg = get_preset("tiny")
    state = ReferenceTransformer(cfg).init_random(seed).state_dict()
    return write_native_dir(folder, iter_native(state, cfg), cfg, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="End-to-end tiny post-training demo on CPU.")
    p.add_argument("--out", default="demo_out", help="everything goes here (recreated); default demo_out")
    p.add_argument("--steps", type=int, default=60, help="post-training steps; default 60")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    logs = out / "logs"
    logs.mkdir(parents=True)
    t_start = time.time()

    videos = out / "videos"
    tok = out / "checkpoints" / "Cosmos-Tokenize1-DV8x16x16-tiny"
    base = out / "checkpoints" / "Cosmos-Predict1-tiny"
    print(f"==> writing sample videos, a random tokenizer and a random tiny base model under {out}")
    from nemo_cosmos_ar.data.samples import write_sample_videos
    from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer

    write_sample_videos(str(videos), num_videos=6, num_frames=48, height=96, width=160)
    write_random_tokenizer(tok, preset="tiny", seed=0)
    make_base_model(base)

    nemo_base = out / "checkpoints" / "Cosmos-Predict1-tiny-nemo"
    cmd = COSMOS + ["convert", "import", "--source", str(base / "model.pt"), "--output", str(nemo_base)]
    _step("import the base model into a NeMo distributed checkpoint", cmd, logs / "import.log")
    data = out / "datasets" / "demo_tiny"
    cmd = COSMOS + ["prepare-data", "--videos", str(videos), "--output", str(data), "--resolution", "64x96"]
    cmd += ["--num-frames", "17", "--window-stride", "4", "--tokenizer", str(tok), "--val-fraction", "0.2"]
    _step("tokenize the videos into a training dataset", cmd + ["--no-progress"], logs / "prepare_data.log")
    meta = json.loads((data / "metadata.json").read_text())
    run_root = out / "checkpoints"
    factory = f"cosmos_ar_tiny_cpu(max_steps={args.steps},data_path={data},base_checkpoint={nemo_base})"
    cmd = NEMO + ["llm", "finetune", "--factory", factory, "--yes"]
    cmd += [f"trainer.callbacks[0].every_n_train_steps={max(args.steps // 2, 1)}"]
    train_out = _step(
        f"post-train for {args.steps} steps (nemo llm finetune --factory cosmos_ar_tiny_cpu)",
        cmd,
        logs / "finetune.log",
        env={"OUTPUT_ROOT": str(run_root)},
    )
    losses = [float(line.split()[3]) for line in train_out.splitlines() if line.startswith("step ")]
    run_dir = run_root / "posttraining" / "autoregressive_base" / "cosmos_ar_tiny_cpu"
    ckpts = sorted((run_dir / "checkpoints").glob("*-last"), key=lambda q: q.stat().st_mtime)
    if not ckpts:
        raise SystemExit(f"no '-last' checkpoint under {run_dir / 'checkpoints'}")
    exported = out / "checkpoints" / "Cosmos-Predict1-tiny-Base_post-trained"
    cmd = COSMOS + ["convert", "export", "--checkpoint", str(ckpts[-1]), "--output", str(exported)]
    _step("export the post-trained checkpoint to cosmos-predict1's model.pt", cmd, logs / "export.log")
    reimported = out / "checkpoints" / "reimported-nemo"
    cmd = COSMOS + ["convert", "import", "--source", str(exported / "model.pt"), "--output", str(reimported)]
    _step("read the exported model.pt back with the importer", cmd, logs / "reimport.log")
    # Mission step 5 on the post-trained weights: the last 9 frames of a video in, 33 frames out (KV-cache top-p
    # sampling, DV decoder). With a random tokenizer the pixels are noise; the point is that the path runs.
    prompt_video = sorted(videos.glob("*.mp4"))[0]
    generated = out / "generated" / "from_video.mp4"
    cmd = COSMOS + ["generate", "--checkpoint", str(exported / "model.pt"), "--tokenizer", str(tok), "--model", "tiny"]
    cmd += ["--input", str(prompt_video), "--num-input-frames", "9", "--resolution", "64x96"]
    cmd += ["--output", str(generated), "--no-progress"]
    _step(
        "generate a 33-frame video from the last 9 frames of a sample video (cosmos-ar generate)",
        cmd,
        logs / "generate.log",
    )

    k = max(1, len(losses) // 10)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    print("\n" + "=" * 78)
    print(f"demo finished in {time.time() - t_start:.0f}s")
    print(f"  sample videos        {videos}")
    print(f"  tokenizer (random)   {tok}")
    print(f"  base model (random)  {base}/model.pt  -> NeMo: {nemo_base}")
    splits = meta["splits"]
    clips = f"{splits['train']['clips']} train / {splits['val']['clips']} val clips"
    print(f"  dataset              {data}  ({clips}, grid {meta['latent_shape']})")
    tb_logs = run_root / "posttraining" / "autoregressive_base" / "tb_logs"
    print(f"  training run         {run_dir}  (TensorBoard: {tb_logs})")
    print(f"  loss                 {first:.3f} (first {k} steps) -> {last:.3f} (last {k} steps)")
    print(f"  exported model.pt    {exported / 'model.pt'}  (read back: {reimported})")
    print(f"  generated video      {generated}  (prompt: last 9 frames of {prompt_video.name})")
    print("=" * 78)
    if not last < first:
        raise SystemExit("the training loss did not fall")
    from nemo_cosmos_ar.video_io import probe

    if probe(generated).num_frames != 33:
        raise SystemExit(f"{generated} has {probe(generated).num_frames} frames, expected 33")
    return 0


if __name__ == "__main__":
    sys.exit(main())
