"""Bad input to `cosmos-ar describe` and `cosmos-ar convert import|export|logits` (issue 18).

Each case runs the command in this process and asserts: exit code, the message (one line, naming the problem and
the fix), no traceback, and every input and the output location byte-identical afterwards with no stray files
(``bad_input_fixtures.run_bad``). prepare-data, datasets and Ctrl-C/SIGTERM are in test_bad_input_data.py.
"""

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from bad_input_fixtures import call_cli, copy_tree, make_fixtures, make_nemo, read_only, run_bad, snapshot
from conftest import child_env


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    fx = make_fixtures(root)
    fx["root"] = root
    return fx


@pytest.fixture(scope="module")
def nemo(fx, tmp_path_factory):
    """A NeMo checkpoint of the small model, and NeMo imported here once (outside any captured stderr)."""
    import nemo_cosmos_ar.nemo_glue.connectors  # noqa: F401

    return make_nemo(tmp_path_factory.mktemp("nemo"), fx["model"], child_env(PYTHONPATH=str(Path(__file__).parents[1])))


def _json(tmp: Path, name: str, obj) -> Path:
    p = tmp / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


# ---------------------------------------------------------------------------------------------------------------
# describe
# ---------------------------------------------------------------------------------------------------------------
GOOD = {"n_layers": 2, "dim": 64, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "ffn_hidden_size": 160}
DESCRIBE = [
    ("unknown_model", ["--model", "bogus"], None, ["--model 'bogus' is not one of tiny, 4b, 12b"]),
    ("frames_32", ["--num-frames", "32"], None, ["32 frames is not 1+8k"]),
    ("frames_0", ["--num-frames", "0"], None, ["0 frames is not 1+8k"]),
    ("frames_negative", ["--num-frames=-7"], None, ["-7 frames is not 1+8k"]),
    ("float_layers", [], {**GOOD, "n_layers": 2.5}, ["n_layers must be an integer in [1, 1024], got 2.5"]),
    ("negative_theta", [], {**GOOD, "rope_theta": -5}, ["rope_theta must be a finite number > 0, got -5"]),
    (
        "nan_theta",
        [],
        '{"n_layers": 2, "dim": 64, "n_heads": 4, "n_kv_heads": 2, "ffn_hidden_size": 160, "rope_theta": NaN}',
        ["rope_theta must be a finite number > 0, got nan"],
    ),
    ("json_array", [], [16, 4096], ["expected a JSON object of fields", "got a list"]),
    ("string_dim", [], {**GOOD, "dim": "64"}, ["dim must be an integer in [1, 65536], got '64'"]),
    ("bool_layers", [], {**GOOD, "n_layers": True}, ["n_layers must be an integer in [1, 1024], got True"]),
    ("list_heads", [], {**GOOD, "n_heads": [4]}, ["n_heads must be an integer in [1, 1024], got [4]"]),
    ("missing_field", [], {"dim": 64}, ["missing architecture field(s)", "n_layers"]),
    ("zero_eps", [], {**GOOD, "norm_eps": 0}, ["norm_eps must be a finite number in (0, 1), got 0"]),
    ("gqa", [], {**GOOD, "n_kv_heads": 3}, ["n_heads=4 must be a multiple of n_kv_heads=3"]),
    ("grid_2d", [], {**GOOD, "video_latent_shape": [5, 40]}, ["video_latent_shape must be three positive integers"]),
    ("huge_layers", [], {**GOOD, "n_layers": 10**6}, ["n_layers must be an integer in [1, 1024], got 1000000"]),
    ("not_json", [], "n_layers = 16", ["cannot read model config", "Expecting value"]),
    ("config_and_model", ["--model", "4b"], GOOD, ["--model and --config exclude each other"]),
]


@pytest.mark.parametrize("args, config, needles", [c[1:] for c in DESCRIBE], ids=[c[0] for c in DESCRIBE])
def test_describe(tmp_path, args, config, needles):
    if config is not None:
        args = args + ["--config", _json(tmp_path, "config.json", config)]
    run_bad(["describe", *args], [tmp_path], needles)


USAGE = [
    ("res_16k", ["--resolution", "8640x15360"], "height and width must be multiples of 16 in [16, 4096]"),
    ("res_16k_square", ["--resolution", "16384x16384"], "16384x16384: height and width must be multiples of 16"),
    ("res_not_16", ["--resolution", "100x100"], "100x100: height and width must be multiples of 16"),
    ("res_zero", ["--resolution", "0x640"], "0x640: height and width"),
    ("res_negative", ["--resolution=-640x1024"], "-640x1024: height and width"),
    ("res_one_number", ["--resolution", "640"], "resolution must look like HEIGHTxWIDTH"),
    ("frames_float", ["--num-frames", "2.5"], "invalid int value: '2.5'"),
]


@pytest.mark.parametrize("args, needle", [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_describe_usage_errors(tmp_path, args, needle):
    run_bad(["describe", *args], [tmp_path], [needle], usage_error=True)


def test_describe_missing_and_folder_config(tmp_path):
    run_bad(["describe", "--config", tmp_path / "nope.json"], [tmp_path], ["cannot read model config", "nope.json"])
    run_bad(["describe", "--config", tmp_path], [tmp_path], ["cannot read model config", "Is a directory"])


# ---------------------------------------------------------------------------------------------------------------
# convert import (all refused before NeMo is imported or anything is written)
# ---------------------------------------------------------------------------------------------------------------
IMPORT = [  # (id, source: a fixture name or a function (fixtures, tmp_path) -> path, extra args, needles)
    ("missing_source", lambda fx, t: fx["root"] / "nope.pt", [], ["nope.pt does not exist"]),
    ("empty_file", "empty.pt", [], ["empty.pt is not a PyTorch checkpoint (0 bytes"]),
    ("text_file", "notes.pt", [], ["notes.pt is not a PyTorch checkpoint", "Pass the released"]),
    ("truncated", "truncated.pt", ["--model", "tiny"], ["truncated.pt is truncated or corrupt", "download it again"]),
    ("empty_state_dict", "empty_dict.pt", [], ["holds a dict, not a state dict"]),
    ("bare_tensor", "tensor.pt", [], ["holds a Tensor, not a state dict"]),
    (
        "int64_weights",
        "int64",
        [],
        ["tensor layers.0.attention.wq.weight is int64", "must be bfloat16, float16 or float32"],
    ),
    ("int8_weights", "int8", [], ["is int8 (and 13 more tensors)", "integer or quantised"]),
    ("fp64_weights", "fp64", [], ["is float64 (and 13 more tensors)"]),
    (
        "nan_weights",
        "nan",
        [],
        ["non-finite values in 1 tensor(s): layers.0.attention.wq.weight (3 NaN)", "use another checkpoint"],
    ),
    ("inf_weights", "inf", [], ["non-finite values in 1 tensor(s): output.weight (2 Inf)"]),
    ("missing_key", "missing_key", [], ["missing keys (1): layers.0.feed_forward.w3.weight"]),
    ("config_not_json", "cfg_not_json", [], ["config.json next to the weights is not valid JSON", "fix or remove it"]),
    ("config_list", "cfg_list", [], ["config.json next to the weights holds a JSON list"]),
    ("config_float_layers", "cfg_float_layers", [], ["n_layers must be an integer in [1, 1024], got 1.5"]),
    ("config_neg_theta", "cfg_neg_theta", [], ["rope_theta must be a finite number > 0, got -10000.0"]),
    ("config_string_dim", "cfg_string_dim", [], ["dim must be an integer in [1, 65536], got '32'"]),
    ("wrong_preset", "model", ["--model", "4b"], ["does not match the '4b' architecture"]),
    ("missing_config", "model", ["--config", "/no/such/config.json"], ["--config /no/such/config.json does not exist"]),
    ("tp_zero", "model", ["--tp", "0"], ["--tp must be an integer in [1, 1024], got 0"]),
    ("tp_negative", "model", ["--tp=-2"], ["--tp must be an integer in [1, 1024], got -2"]),
    ("tp_without_torchrun", "model", ["--tp", "2"], ["--tp 2 needs 2 processes", "this launch has 1"]),
    (
        "nemo_folder_as_source",
        lambda fx, t: (t / "ck" / "weights").mkdir(parents=True) or t / "ck",
        [],
        ["is a NeMo checkpoint, not a native one", "convert export"],
    ),
    ("folder_without_weights", "tokenizer", [], ["has no model.safetensors, model.pt or model_model_mp_0.pt"]),
    (
        "verify_mismatch",
        "model",
        ["--verify", "0" * 32],
        ["MD5 ", "does not match the expected " + "0" * 32, "download it again"],
    ),
    ("verify_not_hex", "model", ["--verify", "xyz"], ["--verify 'xyz': an MD5 is 32 hex digits"]),
    (
        "verify_unknown_file",
        "model",
        ["--verify"],
        ["no published MD5 for", "model/model.pt", "pass the expected value as --verify <md5>"],
    ),
]


@pytest.mark.parametrize("source, extra, needles", [c[1:] for c in IMPORT], ids=[c[0] for c in IMPORT])
def test_import(fx, tmp_path, source, extra, needles):
    src = fx[source] if isinstance(source, str) else source(fx, tmp_path)
    run_bad(
        ["convert", "import", "--source", src, "--output", tmp_path / "out", *extra], [fx["root"], tmp_path], needles
    )


def test_import_verify_published_values(fx, tmp_path):
    """--verify looks released files up by folder/name (NVIDIA's published 4B and 12B values: the fixture differs),
    and the right MD5 passes (then the NaN check still refuses the file)."""
    four = copy_tree(fx["model"].parent, tmp_path / "Cosmos-Predict1-4B") / "model.pt"
    twelve = copy_tree(fx["model"].parent, tmp_path / "Cosmos-Predict1-12B") / "model.pt"
    out = tmp_path / "out"
    run_bad(
        ["convert", "import", "--source", four, "--output", out, "--verify"],
        [tmp_path],
        ["does not match the expected 5fdc62fc87fbf470dbcc2288589b7942"],
    )
    run_bad(
        ["convert", "import", "--source", twelve, "--output", out, "--verify"],
        [tmp_path],
        ["does not match the expected ed748fabcb544d30d35385a8c28efb4d"],
    )
    md5 = hashlib.md5(fx["nan"].read_bytes()).hexdigest()
    before = snapshot(fx["root"], tmp_path)
    rc, stdout, err = call_cli(["convert", "import", "--source", fx["nan"], "--output", out, "--verify", md5.upper()])
    assert rc == 1 and f"MD5 verified: {fx['nan']}" in stdout and "non-finite values" in err
    assert snapshot(fx["root"], tmp_path) == before


def test_md5_streams_in_blocks(tmp_path):
    from nemo_cosmos_ar.conversion.verify import ChecksumError, md5_file, verify_md5

    p = tmp_path / "blob.bin"
    p.write_bytes(b"abc" * 1000 + b"x")
    seen = []
    want = hashlib.md5(p.read_bytes()).hexdigest()
    assert md5_file(p, chunk=64, on_bytes=seen.append) == want
    assert len(seen) == 47 and sum(seen) == 3001  # 46 full blocks of 64 bytes + 57
    (tmp_path / "abc").write_bytes(b"abc")
    assert verify_md5(tmp_path / "abc", "900150983CD24FB0D6963F7D28E17F72") == "900150983cd24fb0d6963f7d28e17f72"
    with pytest.raises(ChecksumError, match="MD5 900150983cd24fb0d6963f7d28e17f72 does not match the expected 0{32}"):
        verify_md5(tmp_path / "abc", "0" * 32)


def _overlap_cases(fx, tmp):
    src = copy_tree(fx["model"].parent, tmp / "ckpt")
    (tmp / "link").symlink_to(src)
    return src


OVERLAP = [
    ("output_is_source_folder", lambda s: ["--output", s, "--overwrite"], "contains the input --source"),
    ("output_is_source_file", lambda s: ["--output", s / "model.pt", "--overwrite"], "is the input --source"),
    ("output_is_config", lambda s: ["--output", s / "config.json", "--overwrite"], "is the input --source"),
    ("output_via_symlink", lambda s: ["--output", s.parent / "link", "--overwrite"], "contains the input --source"),
    (
        "output_is_explicit_config",
        lambda s: ["--config", s / "config.json", "--output", s / "config.json", "--overwrite"],
        "is the input --config",
    ),
    ("output_contains_source", lambda s: ["--output", s.parent, "--overwrite"], "contains the input --source"),
]


@pytest.mark.parametrize("args, needle", [c[1:] for c in OVERLAP], ids=[c[0] for c in OVERLAP])
def test_import_refuses_output_overlapping_input(fx, tmp_path, args, needle):
    src = _overlap_cases(fx, tmp_path)
    run_bad(["convert", "import", "--source", src / "model.pt", *args(src)], [tmp_path], [needle, "somewhere else"])


def test_import_output_inside_source_folder(fx, tmp_path):
    src = _overlap_cases(fx, tmp_path)
    run_bad(
        ["convert", "import", "--source", src, "--output", src / "nemo"], [tmp_path], ["lies inside the input --source"]
    )


def test_import_output_places(fx, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("existing output")
    src = ["convert", "import", "--source", fx["model"], "--output"]
    run_bad(src + [out], [fx["root"], tmp_path], ["out already exists", "--overwrite"])
    # --overwrite with a bad source: the existing output stays as it was
    run_bad(
        ["convert", "import", "--source", fx["nan"], "--output", out, "--overwrite"],
        [fx["root"], tmp_path],
        ["non-finite values"],
    )
    run_bad(src + [fx["a_file"] / "sub" / "out"], [fx["root"], tmp_path], ["a_file.txt is a file, not a folder"])
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        run_bad(src + [ro / "deep" / "out"], [fx["root"], tmp_path], ["ro is not writable", "fix its permissions"])


# ---------------------------------------------------------------------------------------------------------------
# convert logits (refused before any model is built)
# ---------------------------------------------------------------------------------------------------------------
LOGITS = [
    ("tokens_missing", "nope", ["--tokens", "does not exist"]),
    ("tokens_zero_bytes", "zero_bytes", ["is not a PyTorch checkpoint (0 bytes", "torch.save(ids, path)"]),
    ("tokens_text", "text", ["text.pt is not a PyTorch checkpoint"]),
    ("tokens_list", "list", ["holds a list; expected integer token ids [B, S] or [S]"]),
    ("tokens_float", "float", ["holds a 2-D float32 tensor; expected integer token ids"]),
    ("tokens_3d", "3d", ["holds a 3-D int64 tensor"]),
    ("tokens_bool", "bool", ["holds a 2-D bool tensor"]),
    ("tokens_empty", "empty", ["holds no token ids (shape [0])"]),
    ("tokens_negative", "negative", ["token ids must be >= 0, found -4"]),
    ("tokens_dict", "dict", ["holds a dict without a 'tokens' entry (keys: ['ids'])"]),
]


@pytest.mark.parametrize("name, needles", [c[1:] for c in LOGITS], ids=[c[0] for c in LOGITS])
def test_logits_tokens(fx, tmp_path, name, needles):
    tokens = fx.get(f"tokens_{name}", fx["root"] / "tokens" / "nope.pt")
    run_bad(
        ["convert", "logits", "--checkpoint", fx["model"], "--tokens", tokens, "--output", tmp_path / "l.pt"],
        [fx["root"], tmp_path],
        needles,
    )


def test_logits_outputs(fx, tmp_path):
    tokens = copy_tree(fx["root"] / "tokens", tmp_path / "tokens") / "good.pt"
    ck = copy_tree(fx["model"].parent, tmp_path / "ck")
    base = ["convert", "logits", "--tokens", tokens]
    w = [tmp_path]
    run_bad(base + ["--checkpoint", ck / "model.pt", "--output", tokens, "--overwrite"], w, ["is the input --tokens"])
    run_bad(
        base + ["--checkpoint", ck / "model.pt", "--output", ck / "model.pt", "--overwrite"],
        w,
        ["is the input --checkpoint"],
    )
    run_bad(base + ["--checkpoint", ck, "--output", ck / "logits.pt"], w, ["lies inside the input --checkpoint"])
    run_bad(
        base + ["--checkpoint", tmp_path / "none", "--output", tmp_path / "l.pt"], w, ["--checkpoint", "does not exist"]
    )
    run_bad(base + ["--checkpoint", ck / "model.pt", "--output", tokens.parent / "3d.pt"], w, ["3d.pt already exists"])
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        run_bad(base + ["--checkpoint", ck / "model.pt", "--output", ro / "l.pt"], w, ["ro is not writable"])


# ---------------------------------------------------------------------------------------------------------------
# convert export (needs a NeMo checkpoint; damaged copies of it are made per test)
# ---------------------------------------------------------------------------------------------------------------
def _damage(nemo: Path, tmp: Path, how: str) -> Path:
    ck = copy_tree(nemo, tmp / "ck")
    distcp = sorted((ck / "weights").glob("*.distcp"))
    if how == "truncated_distcp":
        data = distcp[-1].read_bytes()
        distcp[-1].write_bytes(data[: len(data) // 3])
    elif how == "missing_distcp":
        distcp[0].unlink()
    elif how == "damaged_metadata":
        (ck / "weights" / ".metadata").write_bytes(b"\x80\x04garbage")
    elif how == "damaged_context":
        (ck / "context" / "io.json").write_text("{ not json")
    elif how == "no_weights":
        shutil.rmtree(ck / "weights")
    return ck


EXPORT_DAMAGE = [
    ("truncated_distcp", ["__0_1.distcp is truncated (", "copy it again"]),
    ("missing_distcp", ["__0_0.distcp is missing", "the checkpoint is incomplete"]),
    ("damaged_metadata", [".metadata is damaged", "copy the checkpoint again"]),
    ("damaged_context", ["context cannot be read", "copy it again"]),
    ("no_weights", ["is not a NeMo distributed checkpoint", "weights/ and context/"]),
]


@pytest.mark.parametrize("how, needles", EXPORT_DAMAGE, ids=[c[0] for c in EXPORT_DAMAGE])
@pytest.mark.parametrize("fmt", ["pt", "hf"])
def test_export_damaged_checkpoint(nemo, tmp_path, how, needles, fmt):
    ck = _damage(nemo, tmp_path, how)
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pt").write_text("an older export, kept when the new one fails")
    run_bad(
        ["convert", "export", "--checkpoint", ck, "--output", out, "--overwrite", "--format", fmt], [tmp_path], needles
    )


EXPORT = [
    (
        "checkpoint_missing",
        lambda n, t: ["--checkpoint", t / "none", "--output", t / "o"],
        ["--checkpoint", "does not exist"],
    ),
    (
        "checkpoint_is_file",
        lambda n, t: ["--checkpoint", n / "weights" / "common.pt", "--output", t / "o"],
        ["common.pt is not a folder"],
    ),
    (
        "output_is_checkpoint",
        lambda n, t: ["--checkpoint", n, "--output", n, "--overwrite"],
        ["is the input --checkpoint"],
    ),
    (
        "output_inside_checkpoint",
        lambda n, t: ["--checkpoint", n, "--output", n / "export"],
        ["lies inside the input --checkpoint"],
    ),
    (
        "output_contains_checkpoint",
        lambda n, t: ["--checkpoint", n, "--output", n.parent, "--overwrite"],
        ["contains the input --checkpoint"],
    ),
    (
        "output_exists",
        lambda n, t: (t / "e").mkdir() or ["--checkpoint", n, "--output", t / "e"],
        ["e already exists; pass overwrite=True (--overwrite)"],
    ),
    (
        "output_under_file",
        lambda n, t: ["--checkpoint", n, "--output", n / "weights" / "common.pt" / "x"],
        ["lies inside the input --checkpoint"],
    ),
    (
        "tp_zero",
        lambda n, t: ["--checkpoint", n, "--output", t / "o", "--tp", "0"],
        ["--tp must be an integer in [1, 1024], got 0"],
    ),
    ("tp_not_dividing", lambda n, t: ["--checkpoint", n, "--output", t / "o", "--tp", "3"], ["cannot shard", "TP=3"]),
    (
        "hf_with_tp",
        lambda n, t: ["--checkpoint", n, "--output", t / "o", "--format", "hf", "--tp", "2"],
        ["--tp applies to --format pt only"],
    ),
]


@pytest.mark.parametrize("args, needles", [c[1:] for c in EXPORT], ids=[c[0] for c in EXPORT])
def test_export(nemo, tmp_path, args, needles):
    run_bad(["convert", "export", *args(nemo, tmp_path)], [nemo, tmp_path], needles)


def test_export_output_places(nemo, tmp_path):
    base = ["convert", "export", "--checkpoint", nemo, "--output"]
    run_bad(base + [nemo.parent / "nemo" / "x" / "y"], [nemo, tmp_path], ["lies inside"])
    (tmp_path / "f").write_text("x")
    run_bad(base + [tmp_path / "f" / "out"], [nemo, tmp_path], ["is a file, not a folder"])
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        run_bad(base + [ro / "out"], [nemo, tmp_path], ["ro is not writable"])
    run_bad(
        ["convert", "export", "--checkpoint", nemo, "--output", tmp_path / "o", "--format", "xyz"],
        [nemo, tmp_path],
        ["argument --format: invalid choice: 'xyz'"],
        usage_error=True,
    )


def test_export_overwrite_swaps_only_after_success_and_sigterm_cleans_up(nemo, tmp_path, monkeypatch):
    """--overwrite replaces an older export only at the end; a SIGTERM mid-write (a real signal to this process)
    leaves the older export, removes the partial one, prints one line and exits 143."""
    from nemo_cosmos_ar.nemo_glue import connectors

    out = tmp_path / "export"
    out.mkdir()
    (out / "model.pt").write_text("older export")
    real = connectors.NeMoCheckpointReader.iter_native

    def iter_then_sigterm(self):
        for i, kv in enumerate(real(self)):
            if i == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            yield kv

    monkeypatch.setattr(connectors.NeMoCheckpointReader, "iter_native", iter_then_sigterm)
    before = snapshot(nemo, tmp_path)
    rc, _, err = call_cli(["convert", "export", "--checkpoint", nemo, "--output", out, "--overwrite"])
    assert rc == 143 and err.strip() == (
        "cosmos-ar convert: interrupted (SIGTERM); partial outputs were removed; inputs are unchanged"
    )
    assert snapshot(nemo, tmp_path) == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    monkeypatch.undo()
    rc, _, err = call_cli(["convert", "export", "--checkpoint", nemo, "--output", out, "--overwrite"])
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path)) == ["export"] and sorted(os.listdir(out)) == ["config.json", "model.pt"]
    back = torch.load(out / "model.pt", weights_only=True)
    assert len(back) == 3 + 11 and back["model.output.weight"].dtype == torch.bfloat16


def test_library_import_refuses_overlap_and_bad_tp(fx, nemo, tmp_path):
    """The importer itself (what `nemo llm import` calls) checks too, not only the CLI."""
    from nemo_cosmos_ar.checks import UserError
    from nemo_cosmos_ar.conversion.native_io import ConversionError
    from nemo_cosmos_ar.nemo_glue.connectors import CosmosARImporter

    src = copy_tree(fx["model"].parent, tmp_path / "ck")
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="output .* contains the input source"):
        CosmosARImporter(str(src / "model.pt"))(output_path=src, overwrite=True)
    with pytest.raises(UserError, match="tensor_model_parallel_size must be an integer in \\[1, 1024\\], got 0"):
        CosmosARImporter(str(src / "model.pt"))(output_path=tmp_path / "o", tensor_model_parallel_size=0)
    with pytest.raises(ConversionError, match="tensor layers.0.attention.wq.weight is int64"):
        CosmosARImporter(str(fx["int64"]))(output_path=tmp_path / "o")
    assert snapshot(tmp_path) == before


CHILD = """
import sys, time
from pathlib import Path
from nemo_cosmos_ar.nemo_glue.connectors import CosmosARImporter
from nemo_cosmos_ar.cli import main

save = CosmosARImporter.nemo_save
def slow_save(self, output_path, trainer, *a, **k):  # the checkpoint is written, not yet renamed into place
    save(self, output_path, trainer, *a, **k)
    Path(sys.argv[1]).write_text("saved")
    time.sleep(120)
CosmosARImporter.nemo_save = slow_save
sys.exit(main(sys.argv[2:]))
"""


def test_import_interrupted_removes_the_partial_checkpoint(fx, tmp_path):
    """Ctrl-C after the NeMo checkpoint is written but before it is renamed: the partial folder and the folders the
    run created go; one line, exit 130. (Export covers an interrupted --overwrite, in-process.)"""
    import subprocess
    import sys
    import time

    from conftest import REPO

    out = tmp_path / "deep" / "er" / "out"
    marker = tmp_path.parent / f"{tmp_path.name}.saved"
    before = snapshot(fx["root"], tmp_path)
    for target in (out,):
        argv = ["convert", "import", "--source", str(fx["model"]), "--output", str(target)]
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(marker), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(PYTHONPATH=str(REPO)),
        )
        deadline = time.time() + 300
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert any(".partial-" in p.name for p in target.parent.iterdir())  # the save happened
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        marker.unlink()
        assert proc.returncode == 130, stderr[-3000:]
        assert stderr.strip().splitlines()[-1] == (
            "cosmos-ar convert: interrupted (SIGINT); partial outputs were removed; inputs are unchanged"
        )
        assert "Traceback" not in stderr
        assert snapshot(fx["root"], tmp_path) == before


def test_guard_turns_stray_os_errors_and_interrupts_into_one_line(capsys):
    """What `checks.guard` does for every command: an OSError that escaped the checks names the file and the fix;
    a KeyboardInterrupt (Ctrl-C arriving before its handler) exits 130 with one line; handlers are restored."""
    from nemo_cosmos_ar.checks import UserError, guard

    before = signal.getsignal(signal.SIGINT)  # Python's default, unless an earlier test in this worker changed it
    with pytest.raises(UserError, match=r"^cannot access /data/x.pt: No space left on device; free some space"):
        with guard("demo"):
            raise OSError(28, "No space left on device", "/data/x.pt")
    with pytest.raises(FileNotFoundError):  # main prints these itself
        with guard("demo"):
            raise FileNotFoundError("/nope")
    with pytest.raises(SystemExit) as e:
        with guard("demo", resume="run it again to resume"):
            raise KeyboardInterrupt
    assert e.value.code == 130
    assert capsys.readouterr().err == "cosmos-ar demo: interrupted (SIGINT); run it again to resume\n"
    assert signal.getsignal(signal.SIGINT) is before  # the guard put back what it found
