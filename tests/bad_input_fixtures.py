"""The one tiny fixture set of the bad-input suite (issue 18) and the harness every case runs through.

``make_fixtures(root)`` writes, in well under a second: a 26k-parameter Cosmos AR model (``model.pt`` +
``config.json``, bf16, a custom architecture so the files stay small), broken variants of it (integer and fp64
dtypes, NaN/Inf, damaged or wrong ``config.json``), token files good and bad, a fake tokenizer folder, one real
24-frame MP4, and a finished dataset (train/val ``.bin``/``.idx`` + ``metadata.json``). ``make_nemo(root)`` adds a
NeMo checkpoint of the model (through a ``cosmos-ar convert import`` subprocess, so this process never builds a
NeMo trainer).

``run_bad(argv, watch, needle)`` runs ``cosmos-ar <argv>`` in this process and asserts what issue 18 asks of every
bad input: a non-zero exit, the expected message on one line, no traceback, and every watched folder (inputs and
the output location) byte-identical afterwards, with nothing added or removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

SMALL = dict(
    n_layers=1, dim=32, n_heads=2, n_kv_heads=1, head_dim=16, ffn_hidden_size=64, vocab_size=256, latent_shape=(2, 2, 2)
)
FAKE_JIT = b"PK\x03\x04" + b"\x00" * 60  # looks like a zip (TorchScript) archive, is not a tokenizer
GRID = (3, 4, 6)  # dataset grid: 17 frames at 64x96


def small_config():
    from nemo_cosmos_ar.model.config import CosmosARConfig

    return CosmosARConfig(**SMALL)


def _weights(seed: int = 0) -> dict[str, torch.Tensor]:
    from nemo_cosmos_ar.conversion.native_io import native_shapes
    from nemo_cosmos_ar.model.reference import ReferenceTransformer

    cfg = small_config()
    sd = ReferenceTransformer(cfg).init_random(seed).state_dict()
    return {"model." + k: sd[k].to(torch.bfloat16) for k in native_shapes(cfg)}


def _model_dir(folder: Path, weights: dict, config: str | None = None) -> Path:
    folder.mkdir(parents=True)
    torch.save(weights, folder / "model.pt")
    if config is None:
        small_config().to_json(str(folder / "config.json"))
    else:
        (folder / "config.json").write_text(config)
    return folder / "model.pt"


def make_fixtures(root: Path) -> dict[str, Path]:
    """Write the shared inputs under ``root``; returns name -> path."""
    from nemo_cosmos_ar.data import samples
    from nemo_cosmos_ar.data.indexed import IndexedRowsWriter

    fx: dict[str, Path] = {}
    w = _weights()
    wq = "model.layers.0.attention.wq.weight"
    fx["model"] = _model_dir(root / "model", w)
    fx["config"] = root / "model" / "config.json"
    cfg = json.loads(fx["config"].read_text())
    nan16, inf16 = (torch.tensor(float(x), dtype=torch.bfloat16) for x in ("nan", "inf"))
    wo = "model.output.weight"
    variants = {
        "int64": {**w, wq: torch.ones(w[wq].shape, dtype=torch.int64)},
        "int8": {k: v.to(torch.int8) for k, v in w.items()},
        "fp64": {k: v.double() for k, v in w.items()},
        "nan": {**w, wq: w[wq].clone().index_put_((torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0])), nan16)},
        "inf": {**w, wo: w[wo].clone().index_put_((torch.tensor([3, 4]), torch.tensor([1, 1])), inf16)},
        "missing_key": {k: v for k, v in w.items() if k != "model.layers.0.feed_forward.w3.weight"},
    }
    for name, weights in variants.items():
        fx[name] = _model_dir(root / name, weights)
    configs = {
        "cfg_not_json": "{ this is not json",
        "cfg_list": "[16, 4096]",
        "cfg_float_layers": json.dumps({**cfg, "n_layers": 1.5}),
        "cfg_neg_theta": json.dumps({**cfg, "rope_theta": -10000.0}),
        "cfg_string_dim": json.dumps({**cfg, "dim": "32"}),
    }
    for name, text in configs.items():
        fx[name] = _model_dir(root / name, w, config=text)
    blob = fx["model"].read_bytes()
    (root / "files").mkdir()
    for name, data in {
        "empty.pt": b"",
        "notes.pt": b"my notes, not a checkpoint\n",
        "truncated.pt": blob[: len(blob) // 2],
    }.items():
        (root / "files" / name).write_bytes(data)
        fx[name] = root / "files" / name
    torch.save({}, root / "files" / "empty_dict.pt")
    torch.save(torch.zeros(3), root / "files" / "tensor.pt")
    fx["empty_dict.pt"], fx["tensor.pt"] = root / "files" / "empty_dict.pt", root / "files" / "tensor.pt"
    # tokens for `convert logits`
    tok = root / "tokens"
    tok.mkdir()
    for name, obj in {
        "good": torch.randint(0, 256, (1, 7)),
        "list": [1, 2, 3],
        "float": torch.rand(1, 7),
        "3d": torch.zeros(1, 1, 7, dtype=torch.long),
        "empty": torch.zeros(0, dtype=torch.long),
        "negative": torch.tensor([[1, -4, 2]]),
        "bool": torch.ones(1, 7, dtype=torch.bool),
        "dict": {"ids": torch.zeros(1, 7, dtype=torch.long)},
    }.items():
        torch.save(obj, tok / f"{name}.pt")
        fx[f"tokens_{name}"] = tok / f"{name}.pt"
    (tok / "zero_bytes.pt").write_bytes(b"")
    (tok / "text.pt").write_text("1 2 3\n")
    fx["tokens_zero_bytes"], fx["tokens_text"] = tok / "zero_bytes.pt", tok / "text.pt"
    # data preparation inputs
    fx["tokenizer"] = root / "tokenizer"
    fx["tokenizer"].mkdir()
    for name in ("encoder.jit", "decoder.jit"):
        (fx["tokenizer"] / name).write_bytes(FAKE_JIT)
    fx["bad_tokenizer"] = root / "bad_tokenizer"
    fx["bad_tokenizer"].mkdir()
    for name in ("encoder.jit", "decoder.jit"):
        (fx["bad_tokenizer"] / name).write_text("not a TorchScript file")
    fx["videos"] = root / "videos"
    fx["videos"].mkdir()
    samples.write_mp4(str(fx["videos"] / "clip.mp4"), samples.render_bouncing_balls(24, 64, 96))
    fx["empty_videos"] = root / "empty_videos"
    fx["empty_videos"].mkdir()
    fx["junk_videos"] = root / "junk_videos"
    fx["junk_videos"].mkdir()
    (fx["junk_videos"] / "a.txt").write_text("x")
    (fx["junk_videos"] / "b.mp4").write_bytes(b"not a video")
    fx["dataset"] = root / "dataset"
    fx["dataset"].mkdir()
    n = int(np.prod(GRID))
    for split, rows in (("train", 3), ("val", 1)):
        writer = IndexedRowsWriter(str(fx["dataset"] / split), np.uint16, n)
        for r in range(rows):
            writer.add(np.arange(n, dtype=np.uint16) + r)
        writer.finalize()
    meta = {
        "format": "nemo_cosmos_ar.clip_tokens",
        "latent_shape": list(GRID),
        "tokens_per_clip": n,
        "resolution": [64, 96],
        "num_frames": 17,
        "samples": {"train": [], "val": []},
    }
    (fx["dataset"] / "metadata.json").write_text(json.dumps(meta))
    fx["a_file"] = root / "files" / "a_file.txt"
    fx["a_file"].write_text("a file where a folder is expected")
    return fx


def make_nemo(root: Path, model: Path, env: dict) -> Path:
    """A NeMo checkpoint of ``model`` via the CLI in a child process (NeMo's trainer stays out of this one)."""
    out = root / "nemo"
    cmd = [sys.executable, "-m", "nemo_cosmos_ar.cli", "convert", "import", "--source", str(model)]
    cmd += ["--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


# ---------------------------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------------------------
def snapshot(*roots: Path) -> dict[str, str]:
    """Every entry under ``roots``: files by content hash, folders and links by kind/target."""
    out = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    out[p] = "link:" + os.readlink(p)
                elif os.path.isdir(p):
                    out[p] = "dir"
                else:
                    with open(p, "rb") as f:
                        out[p] = hashlib.sha1(f.read()).hexdigest()
    return out


def call_cli(argv: list[str]) -> tuple[int, str, str]:
    """``cosmos-ar <argv>`` in this process: (exit code, stdout, stderr)."""
    from nemo_cosmos_ar.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse errors and interrupts
            rc = e.code if isinstance(e.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, err: str, needles: list[str], command: str, usage_error: bool = False) -> None:
    assert rc == (2 if usage_error else 1), (rc, err)
    assert "Traceback" not in err and 'File "' not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"cosmos-ar {command}") and ": error: " in line]
    assert len(errors) == 1, err
    if not usage_error:  # argparse adds its usage lines above the error line; ours print that line alone
        assert lines == errors, err
    for n in needles:
        assert n in errors[0], (n, errors[0])


def run_bad(argv: list, watch: list[Path], needles: list[str], usage_error: bool = False) -> str:
    """Run a bad command; assert the issue-18 contract; return the error line."""
    before = snapshot(*watch)
    rc, _, err = call_cli(argv)
    after = snapshot(*watch)
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"added {added}, removed {removed}, changed {changed}\n{err}"
    assert_one_line_error(rc, err, needles, argv[0], usage_error)
    return err.strip().splitlines()[-1]


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` unwritable, even for root (``chattr +i`` there, since root ignores the mode bits)."""
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if not immutable:
            folder.chmod(0o755)
            import pytest

            pytest.skip("running as root without chattr: cannot make a folder read-only")
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
