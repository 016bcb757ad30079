"""Bad input to `cosmos-ar prepare-data`, damaged datasets before training, and Ctrl-C / SIGTERM (issue 18).

Same contract as test_bad_input.py: exit code, one-line message, no traceback, inputs byte-identical, nothing
new on disk. The interrupt cases run the real command in a child process and signal it mid-run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bad_input_fixtures import GRID, call_cli, copy_tree, make_fixtures, read_only, run_bad, snapshot
from conftest import REPO, child_env


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_data")
    fx = make_fixtures(root)
    fx["root"] = root
    return fx


def _prep(fx, videos=None, output=None, tokenizer=None, *extra) -> list:
    return [
        "prepare-data",
        "--videos",
        videos or fx["videos"],
        "--output",
        output,
        "--tokenizer",
        tokenizer or fx["tokenizer"],
        "--resolution",
        "64x96",
        "--num-frames",
        "17",
        "--no-progress",
        *extra,
    ]


# ---------------------------------------------------------------------------------------------------------------
# prepare-data: arguments (refused before any file is read)
# ---------------------------------------------------------------------------------------------------------------
ARGS = [
    ("workers_0", ["--workers", "0"], ["--workers must be an integer in [1, 1024], got 0"]),
    ("workers_negative", ["--workers=-3"], ["--workers must be an integer in [1, 1024], got -3"]),
    ("batch_0", ["--batch-size", "0"], ["--batch-size must be an integer in [1, 4096], got 0"]),
    ("val_fraction_1_5", ["--val-fraction", "1.5"], ["--val-fraction must be a finite number in [0, 1), got 1.5"]),
    ("val_fraction_1", ["--val-fraction", "1"], ["--val-fraction must be a finite number in [0, 1), got 1.0"]),
    ("val_fraction_negative", ["--val-fraction=-0.1"], ["--val-fraction must be a finite number in [0, 1)"]),
    ("val_fraction_nan", ["--val-fraction", "nan"], ["--val-fraction must be a finite number in [0, 1), got nan"]),
    (
        "device_tpu",
        ["--device", "tpu"],
        ["--device 'tpu' is not a device this command can use; pass cpu, cuda or cuda:N"],
    ),
    ("device_cpu_1", ["--device", "cpu:1"], ["--device 'cpu:1' is not a device"]),
    ("device_cuda_x", ["--device", "cuda:x"], ["--device 'cuda:x' is not a device"]),
    ("frames_32", ["--num-frames", "32"], ["32 frames is not 1+8k"]),
    ("window_stride_0", ["--window-stride", "0"], ["--window-stride must be an integer in [1, 100000], got 0"]),
    ("frame_stride_negative", ["--frame-stride=-1"], ["--frame-stride must be an integer in [1, 100000], got -1"]),
    ("make_samples_0", ["--make-samples", "0"], ["--make-samples must be an integer in [1, 1000], got 0"]),
    ("make_samples_negative", ["--make-samples=-2"], ["--make-samples must be an integer in [1, 1000], got -2"]),
]


@pytest.mark.parametrize("extra, needles", [c[1:] for c in ARGS], ids=[c[0] for c in ARGS])
def test_prepare_arguments(fx, tmp_path, extra, needles):
    run_bad(_prep(fx, None, tmp_path / "out", None, *extra), [fx["root"], tmp_path], needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_prepare_cuda_on_a_cpu_machine(fx, tmp_path, device):
    run_bad(
        _prep(fx, None, tmp_path / "out", None, "--device", device),
        [fx["root"], tmp_path],
        [f"--device {device}: no CUDA GPU is visible to this process", "use --device cpu"],
    )


USAGE = [
    ("res_16k", ["--resolution", "8640x15360"], "8640x15360: height and width must be multiples of 16 in [16, 4096]"),
    ("res_not_16", ["--resolution", "100x96"], "100x96: height and width must be multiples of 16"),
    ("backend", ["--backend", "onnx"], "argument --backend: invalid choice: 'onnx'"),
    ("workers_text", ["--workers", "many"], "argument --workers: invalid int value: 'many'"),
]


@pytest.mark.parametrize("extra, needle", [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_prepare_usage_errors(fx, tmp_path, extra, needle):
    run_bad(_prep(fx, None, tmp_path / "out", None, *extra), [fx["root"], tmp_path], [needle], usage_error=True)


# ---------------------------------------------------------------------------------------------------------------
# prepare-data: inputs and outputs
# ---------------------------------------------------------------------------------------------------------------
def test_prepare_bad_inputs(fx, tmp_path):
    w = [fx["root"], tmp_path]
    out = tmp_path / "out"
    run_bad(_prep(fx, tmp_path / "none", out), w, ["--videos", "none does not exist"])
    run_bad(_prep(fx, fx["a_file"], out), w, ["a_file.txt is not a folder"])
    run_bad(_prep(fx, fx["empty_videos"], out), w, ["empty_videos contains no files; point --videos at a folder"])
    run_bad(_prep(fx, fx["junk_videos"], out), w, ["none of the 2 files in", "b.mp4: unreadable video"])
    run_bad(
        _prep(fx, None, out, tmp_path / "no_tokenizer"),
        w,
        ["encoder.jit not found: --tokenizer must be a Cosmos-Tokenize1-DV8x16x16 folder"],
    )
    run_bad(_prep(fx, None, out, fx["bad_tokenizer"]), w, ["encoder.jit is not a TorchScript file"])
    run_bad(["prepare-data", "--dataset", "no_such_dataset"], w, ["unknown dataset 'no_such_dataset'"])
    run_bad(
        ["prepare-data", "--dataset", "tealrobot_video", "--resolution", "64x96"],
        w,
        ["--resolution (64, 96) contradicts dataset 'tealrobot_video'"],
    )
    run_bad(["prepare-data", "--make-samples", "2"], w, ["--make-samples needs --videos"])
    run_bad(["prepare-data", "--videos", fx["videos"]], w, ["--videos and --output are required"])


def test_prepare_names_a_missing_video_library(fx, tmp_path, monkeypatch):
    """Without PyAV and decord every video would look unreadable; the missing package is named instead."""
    import importlib.util

    real = importlib.util.find_spec
    hidden = ("av", "decord")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    run_bad(
        _prep(fx, None, tmp_path / "out"),
        [fx["root"], tmp_path],
        ["reading videos needs the Python package av or decord, which is not installed here", "pip install av"],
    )


def test_prepare_refuses_outputs_overlapping_inputs(fx, tmp_path):
    videos = copy_tree(fx["videos"], tmp_path / "videos")
    tok = copy_tree(fx["tokenizer"], tmp_path / "tok")
    w = [tmp_path]
    for output, needle in [
        (videos, "is the input --videos"),
        (videos / "tokens", "lies inside the input --videos"),
        (tmp_path, "contains the input --videos"),
        (tok, "is the input --tokenizer"),
        (tok / "ds", "lies inside the input --tokenizer"),
    ]:
        run_bad(_prep(fx, videos, output, tok, "--overwrite"), w, [needle, "write the output somewhere else"])
    # --make-samples writes into --videos: an overlapping output is refused before any sample is written
    run_bad(_prep(fx, videos, videos, tok, "--make-samples", "2"), w, ["is the input --videos"])


def test_prepare_output_places(fx, tmp_path):
    w = [fx["root"], tmp_path]
    run_bad(
        _prep(fx, None, fx["a_file"]), w, ["cannot write to the output folder", "a_file.txt is a file, not a folder"]
    )
    run_bad(_prep(fx, None, fx["a_file"] / "ds"), w, ["cannot write to the output folder", "is a file"])
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        run_bad(_prep(fx, None, ro / "ds"), w, ["cannot write to the output folder", "ro is not writable"])
        run_bad(_prep(fx, ro, tmp_path / "ds", None, "--make-samples", "2"), w, ["--videos", "ro is not writable"])
    run_bad(_prep(fx, None, fx["dataset"]), w, ["already holds a dataset; pass --overwrite to replace it"])


def test_prepare_overwrite_keeps_the_dataset_until_the_new_one_is_complete(fx, tmp_path):
    """--overwrite with a wrong tokenizer (missing, not TorchScript, or one that fails to load), an empty or junk
    video folder: the existing dataset is untouched and no work folder is left."""
    ds = copy_tree(fx["dataset"], tmp_path / "ds")
    w = [fx["root"], tmp_path]
    cases = [
        ((None, tmp_path / "no_tok"), "encoder.jit not found"),
        ((None, fx["bad_tokenizer"]), "is not a TorchScript file"),
        ((fx["empty_videos"], None), "contains no files"),
        ((fx["junk_videos"], None), "none of the 2 files"),
        ((None, fx["tokenizer"]), "tokenizer cannot be loaded"),  # passes every check, fails in the worker
    ]
    for (videos, tok), needle in cases:
        run_bad(_prep(fx, videos, ds, tok, "--overwrite", "--device", "cpu"), w, [needle])
    # A fresh output is not left behind either (nor the folders above it that the run created)
    run_bad(_prep(fx, None, tmp_path / "new" / "deep" / "ds", None, "--device", "cpu"), w, ["cannot be loaded"])


def test_prepare_damaged_unfinished_run(fx, tmp_path):
    ds = tmp_path / "ds"
    (ds / "_work").mkdir(parents=True)
    (ds / "_work" / "plan.json").write_text('{"fingerprint": ')
    run_bad(
        _prep(fx, None, ds),
        [fx["root"], tmp_path],
        ["plan.json (the plan of an unfinished run) is damaged; pass --overwrite to start over"],
    )


def test_prepare_library_checks(fx, tmp_path):
    """prepare_dataset and PrepareConfig check what the CLI checks (for Python callers)."""
    from nemo_cosmos_ar.checks import UserError
    from nemo_cosmos_ar.data.prepare import PrepareConfig, prepare_dataset
    from nemo_cosmos_ar.data.windows import WindowSpec

    kw = dict(
        videos=str(fx["videos"]),
        output=str(tmp_path / "o"),
        tokenizer=str(fx["tokenizer"]),
        resolution=(64, 96),
        windows=WindowSpec(17, 1, 1),
    )
    cfg = PrepareConfig(**kw)
    with pytest.raises(UserError, match=r"workers must be an integer in \[1, 1024\], got 0"):
        prepare_dataset(cfg, workers=0, progress=False)
    with pytest.raises(UserError, match=r"workers must be an integer in \[1, 1024\], got 2.0"):
        prepare_dataset(cfg, workers=2.0, progress=False)
    for bad, msg in [
        (dict(device="tpu"), "is not a device"),
        (dict(resolution=(16384, 16384)), "in \\[16, 4096\\]"),
        (dict(batch_size=1.5), "got 1.5"),
        (dict(backend="onnx"), "'onnx' is not one of eager, fast, jit, auto"),
        (dict(windows=WindowSpec(17, 2.5, 1)), "--window-stride must be an integer"),
        (dict(output=None), "--output must be a path"),
    ]:
        with pytest.raises(ValueError, match=msg):
            PrepareConfig(**{**kw, **bad})
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# Damaged datasets are refused before training creates anything
# ---------------------------------------------------------------------------------------------------------------
def _damage_dataset(src: Path, dst: Path, how: str) -> Path:
    ds = copy_tree(src, dst)
    idx = ds / "train.idx"
    if how == "truncated_idx":
        idx.write_bytes(idx.read_bytes()[:-5])
    elif how == "bad_magic":
        idx.write_bytes(b"NOTANIDX" + idx.read_bytes()[8:])
    elif how == "short_bin":
        (ds / "train.bin").write_bytes((ds / "train.bin").read_bytes()[:-2])
    elif how == "metadata_not_json":
        (ds / "metadata.json").write_text("{")
    elif how == "metadata_grid":
        (ds / "metadata.json").write_text(json.dumps({"latent_shape": [3, 4]}))
    elif how == "wrong_lengths":
        meta = json.loads((ds / "metadata.json").read_text())
        (ds / "metadata.json").write_text(json.dumps({**meta, "latent_shape": [3, 4, 7]}))
    elif how == "empty_train":
        from nemo_cosmos_ar.data.indexed import IndexedRowsWriter

        IndexedRowsWriter(str(ds / "train"), np.uint16, int(np.prod(GRID))).finalize()
    elif how == "no_idx":
        idx.unlink()
    return ds


DAMAGE = [
    ("truncated_idx", "train.idx is truncated or damaged"),
    ("bad_magic", "train.idx is not a Megatron indexed-dataset index"),
    ("short_bin", "train.bin has 430 bytes, its index describes 432"),
    ("metadata_not_json", "metadata.json is not readable JSON"),
    ("metadata_grid", "latent_shape must be three positive integers, got [3, 4]"),
    ("wrong_lengths", "clips are not all 84 tokens long"),
    ("empty_train", "the train split holds no clips"),
    ("no_idx", "train.idx not found"),
]


@pytest.mark.parametrize("how, needle", DAMAGE, ids=[c[0] for c in DAMAGE])
def test_damaged_dataset_is_refused_by_the_data_module(fx, tmp_path, how, needle):
    from nemo_cosmos_ar.data.dataset import ClipTokenDataset, check_dataset
    from nemo_cosmos_ar.nemo_glue.data_module import CosmosVideoDataModule

    ds = _damage_dataset(fx["dataset"], tmp_path / "ds", how)
    before = snapshot(tmp_path)
    for make in (lambda: CosmosVideoDataModule(path=str(ds)), lambda: check_dataset(str(ds))):
        with pytest.raises((ValueError, FileNotFoundError)) as e:
            make()
        assert needle in str(e.value) and "\n" not in str(e.value)
    if how in ("truncated_idx", "bad_magic", "short_bin"):
        with pytest.raises(ValueError, match=needle.split(" ")[0]):
            ClipTokenDataset(str(ds), "train")
    assert snapshot(tmp_path) == before


def test_recipe_with_a_damaged_dataset_leaves_no_run_folder(fx, tmp_path):
    """`nemo llm finetune` builds the whole recipe (data module included) before it starts the run, so a corrupt
    .idx fails there: exit 1, our one-line reason, no traceback, no run folder under $OUTPUT_ROOT."""
    ds = _damage_dataset(fx["dataset"], tmp_path / "ds", "truncated_idx")
    before = snapshot(tmp_path)
    cmd = [
        str(Path(sys.executable).parent / "nemo"),
        "llm",
        "finetune",
        "--factory",
        f"cosmos_ar_tiny_cpu(data_path={ds})",
        "-y",
    ]
    env = child_env(PYTHONPATH=str(REPO), OUTPUT_ROOT=str(tmp_path / "runs"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "train.idx is truncated or damaged: 97 bytes for 3 clips (expected 102)" in out and "Traceback" not in out
    assert snapshot(tmp_path) == before  # no run folder, dataset unchanged


# ---------------------------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM (real signals to a real prepare-data process)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_inputs(tmp_path_factory):
    """A random-weight tokenizer and one 60-frame video: 44 clips, enough work to interrupt."""
    from nemo_cosmos_ar.data import samples
    from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer

    root = tmp_path_factory.mktemp("interrupt")
    tok = write_random_tokenizer(root / "tok", "tiny", seed=0, autoencoder=False)
    (root / "videos").mkdir()
    samples.write_mp4(str(root / "videos" / "long.mp4"), samples.render_bouncing_balls(60, 64, 96))
    return root / "videos", tok


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def _started(out: Path) -> bool:
    work = out / "_work"
    return work.is_dir() and any(j.stat().st_size for j in work.glob("shard-*.jsonl"))


INTERRUPTS = [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 1), (signal.SIGTERM, 143, 2)]


@pytest.mark.parametrize("sig, code, workers", INTERRUPTS, ids=["SIGINT", "SIGTERM", "SIGTERM-2-workers"])
def test_prepare_interrupted_says_how_to_resume(real_inputs, tmp_path, sig, code, workers):
    """The signal goes to the main process only (as a scheduler sends it): local workers are stopped too."""
    videos, tok = real_inputs
    out = tmp_path / "ds"
    argv = [
        "--videos",
        videos,
        "--output",
        out,
        "--tokenizer",
        tok,
        "--resolution",
        "64x96",
        "--num-frames",
        "17",
        "--batch-size",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--workers",
        workers,
    ]
    cmd = [sys.executable, "-m", "nemo_cosmos_ar.cli", "prepare-data", *map(str, argv)]
    before = snapshot(videos, tok)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=child_env(PYTHONPATH=str(REPO))
    )
    deadline = time.time() + 300
    while not _started(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # wait for the first finished unit: the run is encoding now
    kids = [k for k in _children(proc.pid) if workers > 1]
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, (stdout, stderr)
    end = time.time() + 15  # the workers are terminated at once; multiprocessing's helper exits when it sees EOF
    while [k for k in kids if _alive(k)] and time.time() < end:
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)], [Path(f"/proc/{k}/cmdline").read_bytes() for k in kids if _alive(k)]
    from nemo_cosmos_ar.data.shards import done_units

    assert 1 <= len(done_units(str(out / "_work"))) < 44  # stopped mid-run, not after the workers finished
    assert stderr.strip() == (
        f"cosmos-ar prepare-data: interrupted ({sig.name}); run the same command again to "
        "resume (finished clips are kept)"
    )
    assert snapshot(videos, tok) == before
    assert sorted(os.listdir(out)) == ["_work"]  # no dataset file yet; the work folder holds the finished units
    rc, stdout, err = call_cli(["prepare-data", *argv[:-2]])  # the same command (one worker here) resumes
    assert rc == 0, err
    assert "resumed" in stdout and sorted(os.listdir(out)) == [
        "metadata.json",
        "train.bin",
        "train.idx",
        "val.bin",
        "val.idx",
    ]
    assert json.loads((out / "metadata.json").read_text())["splits"]["train"]["clips"] == 44
