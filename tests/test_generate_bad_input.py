"""Bad input to ``cosmos-ar generate`` (issue 18): one line on stderr naming the problem, a non-zero exit, no
traceback, the inputs byte-identical afterwards and nothing new on disk.

Every case runs in-process on one shared set of tiny assets; most fail before any model is loaded.
"""

import json
import os
import signal
import struct
import sys
import zlib
from pathlib import Path

import pytest
import torch

from gen_assets import cli_args, make_assets, snapshot
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR

DD_FILES = [
    (DIFFUSION_DECODER_DIR, "model.pt"),
    (DIFFUSION_DECODER_DIR, "aux_vars.pt"),
    (CV_TOKENIZER_DIR, "decoder.jit"),
    (CV_TOKENIZER_DIR, "mean_std.pt"),
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = make_assets(tmp_path_factory.mktemp("bad_input"))
    (root / "text.png").write_text("this is not an image\n")
    (root / "truncated.mp4").write_bytes((root / "input.mp4").read_bytes()[:1500])
    video_io.write_video(root / "short.mp4", torch.zeros(5, 64, 96, 3, dtype=torch.uint8))
    (root / "huge.png").write_bytes(_png_header(20000, 10000))  # 200 megapixels, header only
    (root / "empty.pt").write_bytes(b"")
    (root / "junk.pt").write_bytes(os.urandom(256))
    torch.save({"tokens": torch.zeros(1, 5, 4, 6, dtype=torch.long)}, root / "dict.pt")
    torch.save(torch.zeros(1, 5, 4, 6), root / "float.pt")
    torch.save(torch.zeros(1, 5, 8, 8, dtype=torch.long), root / "wrong_grid.pt")
    torch.save(torch.full((1, 5, 4, 6), 70000, dtype=torch.long), root / "big_ids.pt")
    for folder, name in DD_FILES:  # a diffusion decoder whose four files are there but junk
        (root / "dd_junk" / folder).mkdir(parents=True, exist_ok=True)
        (root / "dd_junk" / folder / name).write_bytes(os.urandom(256))
    (root / "batch_empty.jsonl").write_text("\n\n")
    (root / "batch_binary.jsonl").write_bytes(b"\xff\xfe\x00\x81" * 8)
    nemo = root / "nemo_no_context" / "weights"
    nemo.mkdir(parents=True)
    (nemo / ".metadata").write_bytes(b"not a pickle")
    bad_meta = root / "nemo_bad_metadata"
    (bad_meta / "weights").mkdir(parents=True)
    (bad_meta / "weights" / ".metadata").write_bytes(b"\x80\x04truncated")
    (bad_meta / "context").mkdir()
    (bad_meta / "context" / "io.json").write_text("{}")  # a complete context: the .metadata is what is damaged
    (bad_meta / "context" / "model.yaml").write_text(
        json.dumps(
            {
                "config": {
                    "num_layers": 2,
                    "hidden_size": 64,
                    "num_attention_heads": 4,
                    "num_query_groups": 2,
                    "kv_channels": 32,
                    "ffn_hidden_size": 160,
                    "vocab_size": 64000,
                    "layernorm_epsilon": 1e-5,
                    "rope_theta": 500000.0,
                    "latent_shape": [5, 4, 6],
                    "preset": "tiny",
                }
            }
        )
    )  # JSON is YAML
    return root


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def _base(a: Path, out: Path) -> list[str]:
    return cli_args(a, a / "input.png", out, "--no-progress")


def _set(argv: list[str], flag: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(flag) + 1] = value
    return argv


def _dd_junk(a: Path) -> list[str]:
    return [
        "--diffusion-decoder-dir",
        str(a / "dd_junk" / DIFFUSION_DECODER_DIR),
        "--cv-tokenizer",
        str(a / "dd_junk" / CV_TOKENIZER_DIR),
    ]


def _drop(argv: list[str], flag: str) -> list[str]:
    i = argv.index(flag)
    return argv[:i] + argv[i + 2 :]


def _with(*flags: str):
    """The working command line plus ``flags``."""
    return lambda a, o: _base(a, o / "v.mp4") + list(flags)


def _replace(flag: str, value: str):
    """The working command line with ``flag`` set to ``value``."""
    return lambda a, o: _set(_base(a, o / "v.mp4"), flag, value)


def _asset(flag: str, name: str):
    """The working command line with ``flag`` set to the asset ``name``."""
    return lambda a, o: _set(_base(a, o / "v.mp4"), flag, str(a / name))


def _tokens(name: str):
    """A prompt-tokens command line (no --input) reading the asset ``name``."""
    return lambda a, o: _drop(_base(a, o / "v.mp4"), "--input") + ["--prompt-tokens", str(a / name)]


def _batch(name: str):
    """A batch command line (no --input, no --output) reading the asset ``name``."""

    def build(a: Path, o: Path) -> list[str]:
        argv = _drop(_drop(_base(a, o), "--input"), "--output")
        return argv + ["--batch-input-path", str(a / name), "--output-folder", str(o)]

    return build


# (case id, argv builder (assets, out folder) -> argv, expected exit code, text the one line must contain)
CASES = [
    ("top-k 0", _with("--top-k", "0"), 1, "top_k must be an integer >= 1"),
    ("top-k negative", _with("--top-k", "-3"), 1, "top_k must be an integer >= 1"),
    ("temperature inf", _with("--temperature", "inf"), 1, "finite number >= 0"),
    ("temperature nan", _with("--temperature", "nan"), 1, "finite number >= 0"),
    ("temperature negative", _with("--temperature", "-1"), 1, "finite number"),
    ("top-p 0", _with("--top-p", "0"), 1, "top_p must be in (0, 1]"),
    ("top-p 1.5", _with("--top_p", "1.5"), 1, "top_p must be in (0, 1]"),
    ("top-p nan", _with("--top-p", "nan"), 1, "top_p must be in (0, 1]"),
    ("seed negative", _with("--seed", "-1"), 1, "--seed must be in [0, 2**63)"),
    ("seed not a number", _with("--seed", "x"), 2, "argument --seed: invalid int"),
    ("batch size 0", _with("--batch-size", "0"), 1, "must be >= 1"),
    ("num-gpus 0", _with("--num-gpus", "0"), 1, "must be >= 1"),
    (
        "num-gpus 2 without torchrun",
        _with("--num_gpus", "2"),
        1,
        "--num-gpus 2 but 1 process(es) run: start it as `torchrun --nproc-per-node 2",
    ),
    ("attention bucket negative", _with("--attention-bucket", "-8"), 1, "bucket must be >= 0"),
    (
        "save-tokens = output",
        lambda a, o: _base(a, o / "v.mp4") + ["--save-tokens", str(o / "v.mp4")],
        1,
        "is the video output too",
    ),
    (
        "output = input",
        lambda a, o: (
            _set(cli_args(a, a / "input.mp4", a / "input.mp4"), "--input", str(a / "input.mp4")) + ["--overwrite"]
        ),
        1,
        "is the input",
    ),
    ("output inside the tokenizer", _asset("--output", "tokenizer/v.mp4"), 1, "lies inside the tokenizer"),
    (
        "save-tokens = checkpoint",
        lambda a, o: _base(a, o / "v.mp4") + ["--save-tokens", str(a / "model.pt"), "--overwrite"],
        1,
        "is the checkpoint",
    ),
    ("output is a folder", _asset("--output", "tokenizer"), 1, "must end in .mp4"),
    ("output not .mp4", lambda a, o: _set(_base(a, o), "--output", str(o / "v.avi")), 1, "must end in .mp4"),
    ("output not writable", _replace("--output", "/proc/cosmos-ar-test/v.mp4"), 1, "is not writable"),
    ("output under a file", _asset("--output", "input.png/v.mp4"), 1, "is a file, not a folder"),
    ("output exists", _asset("--output", "short.mp4"), 1, "already exists; pass --overwrite"),
    ("device cuda on a CPU machine", _replace("--device", "cuda"), 1, "CUDA is not available on this machine"),
    ("device cuda:1", _replace("--device", "cuda:1"), 1, "CUDA is not available"),
    ("device tpu", _replace("--device", "tpu"), 1, "is not a device this command runs on"),
    ("missing input", _asset("--input", "nope.png"), 1, "does not exist"),
    ("200-megapixel image", _asset("--input", "huge.png"), 1, "20000x10000 (200 megapixels)"),
    ("text file named .png", _asset("--input", "text.png"), 1, "not a readable image"),
    ("truncated video", _asset("--input", "truncated.mp4"), 1, "cannot decode as a video"),
    ("video shorter than 9 frames", _asset("--input", "short.mp4"), 1, "has 5 frame(s) but --num-input-frames 9"),
    ("input_type contradicts the file", _with("--input_type", "video"), 1, "--input_type video but"),
    ("Video2World input type", _with("--input_type", "text_and_video"), 1, "Video2World"),
    (
        "input and prompt tokens",
        lambda a, o: _base(a, o / "v.mp4") + ["--prompt-tokens", str(a / "dict.pt")],
        1,
        "either --input or --prompt-tokens",
    ),
    ("no input at all", lambda a, o: _drop(_base(a, o / "v.mp4"), "--input"), 1, "pass an input image or video"),
    ("prompt tokens: empty file", _tokens("empty.pt"), 1, "empty.pt is empty"),
    ("prompt tokens: not a torch file", _tokens("junk.pt"), 1, "is not a torch file"),
    ("prompt tokens: not a tensor", _tokens("dict.pt"), 1, "holds a dict, not a tensor"),
    ("prompt tokens: floats", _tokens("float.pt"), 1, "expected integer token ids"),
    ("prompt tokens: wrong grid", _tokens("wrong_grid.pt"), 1, "is a [5, 8, 8] grid"),
    ("prompt tokens: ids out of range", _tokens("big_ids.pt"), 1, "ids must lie in [0, 64000)"),
    ("missing checkpoint", _asset("--checkpoint", "nope.pt"), 1, "does not exist"),
    ("image as checkpoint", _asset("--checkpoint", "input.png"), 1, "is not a PyTorch checkpoint"),
    ("checkpoint of another size", _replace("--model", "4b"), 1, "does not fit the '4b' architecture"),
    ("unknown model", _replace("--model", "7b"), 1, "is neither a preset"),
    (
        "NeMo folder without context",
        lambda a, o: _drop(_set(_base(a, o / "v.mp4"), "--checkpoint", str(a / "nemo_no_context")), "--model"),
        1,
        "context/model.yaml is missing",
    ),
    (
        "NeMo checkpoint with a truncated .metadata",
        lambda a, o: _drop(_set(_base(a, o / "v.mp4"), "--checkpoint", str(a / "nemo_bad_metadata")), "--model"),
        1,
        "the checkpoint is incomplete",
    ),
    ("missing tokenizer", _asset("--tokenizer", "nope"), 1, "tokenizer folder"),
    (
        "resolution above the trained grid",
        _with("--resolution", "1024x2048"),
        1,
        "larger than the model was trained for (at most 640x1024)",
    ),
    # Refused when parsed (exit 2) by a stricter shared --resolution parser, or by generate's own checks (exit 1).
    (
        "16k resolution",
        _with("--resolution", "8640x15360"),
        (1, 2),
        ("larger than the model was trained for", "multiples of 16 in [16, 4096]"),
    ),
    (
        "resolution not a multiple of 16",
        _with("--resolution", "100x100"),
        (1, 2),
        ("not a multiple of 16", "multiples of 16 in [16, 4096]"),
    ),
    ("resolution unparseable", _with("--resolution", "big"), 2, "resolution must look like HEIGHTxWIDTH"),
    ("checkpoint and ar_model_dir", _with("--ar_model_dir", "X"), 1, "either --checkpoint or --ar_model_dir"),
    ("output and video_save_name", _with("--video_save_name", "x"), 1, "either --output or --video_save_name"),
    (
        "diffusion decoder asked for, no weights",
        _with("--diffusion-decoder"),
        1,
        "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p/model.pt not found",
    ),
    (
        "diffusion decoder weights are junk",
        lambda a, o: _base(a, o / "v.mp4") + _dd_junk(a),
        1,
        ("is not a readable PyTorch checkpoint", "is not a tensors-only PyTorch checkpoint"),
    ),
    (
        "output inside the diffusion decoder folder",
        lambda a, o: (
            _set(_base(a, o / "v.mp4"), "--output", str(a / "dd_junk" / DIFFUSION_DECODER_DIR / "v.mp4")) + _dd_junk(a)
        ),
        1,
        "lies inside the diffusion decoder",
    ),
    (
        "diffusion decoder and disable",
        _with("--diffusion-decoder", "--disable_diffusion_decoder"),
        1,
        "pass either --diffusion-decoder",
    ),
    (
        "guardrail asked for, no weights",
        _with("--guardrail"),
        1,
        "no guardrail weights (video_content_safety_filter/safety_filter.pt and face_blur_filter/Resnet50_Final.pth)",
    ),
    (
        "guardrail and disable-guardrail",
        _with("--guardrail", "--disable_guardrail"),
        1,
        "pass either --guardrail or --disable-guardrail",
    ),
    ("batch file missing", _batch("nope.jsonl"), 1, "cannot be read"),
    ("batch file empty", _batch("batch_empty.jsonl"), 1, "has no lines"),
    ("batch file binary", _batch("batch_binary.jsonl"), 1, "is not a text"),
    (
        "batch and a single input",
        lambda a, o: _drop(_base(a, o / "v.mp4"), "--output") + ["--batch-input-path", str(a / "batch_empty.jsonl")],
        1,
        "either --batch-input-path or a single --input",
    ),
    (
        "batch and --output",
        lambda a, o: _drop(_base(a, o / "v.mp4"), "--input") + ["--batch-input-path", str(a / "batch_empty.jsonl")],
        1,
        "batch outputs go to --video_save_folder",
    ),
]


def _check(assets, out, argv, capsys, code, needle) -> None:
    """``code``: the exit code (or a tuple of accepted ones); ``needle``: text of the line (or alternatives)."""
    before = snapshot(assets)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors
        rc = e.code
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc in (code if isinstance(code, tuple) else (code,)), err
    assert len(lines) == 1 and "Traceback" not in err, err
    needles = needle if isinstance(needle, tuple) else (needle,)
    assert lines[0].startswith("cosmos-ar generate: ") and any(n in lines[0] for n in needles), lines[0]
    assert snapshot(assets) == before  # inputs untouched
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))  # nothing left behind


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(assets, tmp_path, capsys, name):
    _, build, code, needle = next(c for c in CASES if c[0] == name)
    out = tmp_path / "out"
    _check(assets, out, build(assets, out), capsys, code, needle)


def test_missing_pyav_is_named_before_any_work(assets, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now fails as if PyAV were not installed
    out = tmp_path / "out"
    _check(
        assets,
        out,
        _base(assets, out / "v.mp4"),
        capsys,
        1,
        "needs the Python package PyAV (module 'av'), which is not installed: pip install av",
    )


def _interrupt(exc):
    def raiser(*a, **k):
        raise exc

    return raiser


def test_ctrl_c_during_generation_exits_130_and_leaves_nothing(assets, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gen, "generate_tokens", _interrupt(KeyboardInterrupt()))
    out = tmp_path / "out"
    argv = _base(assets, out / "v.mp4") + ["--save-tokens", str(out / "t.pt")]
    _check(assets, out, argv, capsys, 130, "interrupted; no partial output left")


def test_sigterm_exits_143_and_leaves_nothing(assets, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gen, "generate_tokens", lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
    out = tmp_path / "out"
    _check(assets, out, _base(assets, out / "v.mp4"), capsys, 143, "terminated; no partial output left")
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back


def test_ctrl_c_while_writing_removes_the_partial_files(assets, tmp_path, capsys, monkeypatch):
    """Interrupted at the video's final rename: its temporary file, the tokens' temporary file and the folders this
    run created are all removed."""
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(".mp4"):
            assert Path(src).exists()  # the video was fully written under its temporary name
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(video_io.os, "replace", replace)
    out = tmp_path / "out"
    argv = _base(assets, out / "deep" / "v.mp4") + ["--save-tokens", str(out / "tokens" / "t.pt")]
    _check(assets, out, argv, capsys, 130, "interrupted")


def test_a_path_without_tensor_parallelism_refuses_under_torchrun(assets, tmp_path, capsys, monkeypatch):
    """Two torchrun processes asking for the plain-PyTorch engine: one line (from rank 0), no double run."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    _check(
        assets,
        out,
        _base(assets, out / "v.mp4") + ["--engine", "reference"],
        capsys,
        1,
        "--engine reference has no tensor parallelism; under torchrun with 2 processes use the default engine",
    )
    monkeypatch.setenv("RANK", "1")  # the other rank says nothing and fails the same way
    assert main(_base(assets, out / "v.mp4") + ["--engine", "reference"]) == 1
    assert capsys.readouterr().err == ""


_ENTRY_CHILD = """
import atexit, sys, time
import nemo_cosmos_ar.cli as cli
from nemo_cosmos_ar import runtime

atexit.register(lambda: print("shutdown ran", flush=True))

def fake_main(argv=None):
    if sys.argv[1] == "busy":
        runtime.Background(lambda: time.sleep(120), "cpu", "slow-load")
        assert runtime.background_busy() == ["slow-load"]
    print("cosmos-ar generate: error: bad input", file=sys.stderr)
    return int(sys.argv[2])

cli.main = fake_main
cli.entry()
"""


@pytest.mark.parametrize("busy", ["busy", "idle"])
@pytest.mark.parametrize("code", [0, 3])
def test_an_error_during_a_background_load_exits_at_once_with_its_code(busy, code):
    # A failure while a load still runs on a Background thread skips interpreter shutdown (os._exit), where C++
    # destructors under that thread abort the process (exit -6 on the H200); otherwise the exit is the normal one.
    import subprocess

    from conftest import child_env

    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY_CHILD, busy, str(code)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "cosmos-ar generate: error: bad input"
    assert ("shutdown ran" in proc.stdout) == (busy == "idle" or code == 0)


_CLOSE_CHILD = """
import atexit, sys
import torch.distributed as dist
import nemo_cosmos_ar.cli as cli

atexit.register(lambda: print("GROUP_OPEN_AT_EXIT", dist.is_initialized(), flush=True))
sys.argv = ["cosmos-ar", *sys.argv[1:]]
cli.entry()
"""


def test_the_command_closes_its_process_group_before_exit(assets, tmp_path):
    # Left open, NCCL warns at every exit that destroy_process_group() was not called (seen on the H200).
    # main() keeps it (in-process callers gather after it, tests/scripts/generate_cp.py); the console script closes it.
    import subprocess

    from conftest import child_env

    argv = _base(assets, tmp_path / "v.mp4")
    proc = subprocess.run(
        [sys.executable, "-c", _CLOSE_CHILD, *argv], capture_output=True, text=True, env=child_env(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GROUP_OPEN_AT_EXIT False" in proc.stdout and (tmp_path / "v.mp4").is_file()
    assert main(_base(assets, tmp_path / "w.mp4")) == 0
    import torch.distributed as dist

    assert dist.is_initialized()  # in-process: still open for the caller
