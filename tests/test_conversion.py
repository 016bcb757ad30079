"""Checkpoint conversion both ways: released model.pt / TP shards / iter_*.pt / HF folder <-> NeMo (issue #3).

The NeMo work is batched into few processes (NeMo costs ~10 s to import): ``scripts/conversion_roundtrip.py`` (every
single-rank round trip, ``cosmos-ar convert logits`` and the error cases), ``scripts/conversion_tp.py`` under torchrun
(a TP=2 import and TP=1 <-> TP=2 loads), one ``cosmos-ar convert logits`` CLI process and one ``nemo llm import``.
The first tests need no NeMo at all.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, child_env, run_torchrun
from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.conversion.architecture import resolve_config
from nemo_cosmos_ar.conversion.tp_layout import tp_split_dim
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer

TOL = 1e-5  # max |Δlogit|, fp32
BIN = Path(sys.executable).parent


def _tiny_bf16(seed: int = 0) -> tuple:
    cfg = get_preset("tiny")
    sd = {k: v.to(torch.bfloat16) for k, v in ReferenceTransformer(cfg).init_random(seed).state_dict().items()}
    return cfg, sd


# ---------------------------------------------------------------------------------------------------------------
# native_io alone (no NeMo, fast)
# ---------------------------------------------------------------------------------------------------------------
def test_streamed_model_pt_is_a_torch_save_file_in_released_order(tmp_path):
    cfg, sd = _tiny_bf16()
    path = native_io.write_model_pt(tmp_path / "model.pt", native_io.iter_native(sd, cfg), cfg)
    for mmap in (False, True):
        back = torch.load(path, weights_only=True, mmap=mmap)
        assert list(back) == ["model." + k for k in cm.native_shapes(cfg)]
        assert all(
            torch.equal(back["model." + k], v) and back["model." + k].dtype == torch.bfloat16 for k, v in sd.items()
        )
    assert len(back) == 3 + 11 * cfg.n_layers
    assert os.listdir(tmp_path) == ["model.pt"]


def test_hf_folder_is_readable_by_safetensors(tmp_path):
    from safetensors.torch import load_file

    cfg, sd = _tiny_bf16(1)
    native_io.write_hf(tmp_path / "hf", native_io.iter_native(sd, cfg), cfg)
    st = load_file(tmp_path / "hf" / "model.safetensors")
    assert set(st) == set(sd) and all(torch.equal(st[k], sd[k]) for k in sd)
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "Cosmos-Predict1" in card
    back = native_io.load_native(tmp_path / "hf")
    assert back.kind == "Hugging Face folder" and resolve_config(back).name == "tiny"


def test_cosmos_style_shards_merge_exactly_and_split_back(tmp_path):
    """Shards as cosmos-predict1 writes them (torch.chunk views, non-contiguous wo/w2) merge bit-exactly."""
    cfg, sd = _tiny_bf16(2)
    for r in range(2):
        part = {}
        for k, v in sd.items():
            dim = tp_split_dim(k)
            part["model." + k] = v if dim is None else torch.chunk(v, 2, dim=dim)[r]
        assert not part["model.layers.0.attention.wo.weight"].is_contiguous()
        torch.save(part, tmp_path / f"model_model_mp_{r}.pt")
    ckpt = native_io.load_native(tmp_path / "model.pt")  # <stem>.pt absent -> its shards, as cosmos-predict1 names them
    assert ckpt.kind == "TP shards" and ckpt.tp == 2
    assert all(torch.equal(ckpt.tensors[k], v) for k, v in sd.items())
    (tmp_path / "model_model_mp_1.pt").unlink()
    torch.save({}, tmp_path / "model_model_mp_2.pt")
    with pytest.raises(native_io.ConversionError, match=r"rank\(s\) \[1\] missing"):
        native_io.load_native(tmp_path / "model_model_mp_0.pt")


def test_custom_architecture_and_tp_divisibility(tmp_path):
    cfg, sd = _tiny_bf16()
    ckpt = native_io.NativeCheckpoint(sd, "model.pt", [tmp_path / "model.pt"])
    other = tmp_path / "config.json"
    get_preset("tiny").to_json(str(other))
    assert resolve_config(ckpt, str(other)).name == "tiny"  # an unmodified preset keeps its name
    with pytest.raises(native_io.ConversionError, match="n_kv_heads=2"):
        native_io.write_tp_shards(tmp_path / "model.pt", native_io.iter_native(sd, cfg), cfg, 4)
    assert os.listdir(tmp_path) == ["config.json"]


def test_atomic_outputs_leave_nothing_on_failure(tmp_path):
    cfg, sd = _tiny_bf16()
    wrong = dict(sd)
    wrong["layers.1.attention.wq.weight"] = torch.zeros(3, 3, dtype=torch.bfloat16)
    with pytest.raises(native_io.ConversionError, match=r"layers.1.attention.wq.weight \[3, 3\]"):
        native_io.write_hf(tmp_path / "deep" / "hf", native_io.iter_native(wrong, cfg), cfg)
    with pytest.raises(native_io.ConversionError):
        native_io.write_model_pt(tmp_path / "model.pt", native_io.iter_native(wrong, cfg), cfg)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# Through NeMo (one process for all single-rank work)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("conversion")
    cmd = [sys.executable, str(REPO / "tests" / "scripts" / "conversion_roundtrip.py"), str(d)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=child_env(), cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return d


@pytest.fixture(scope="module")
def results(work):
    return json.loads((work / "results.json").read_text())


@pytest.fixture(scope="module")
def tp_work(work):
    out = run_torchrun("conversion_tp.py", str(work), nproc=2)
    assert "CONVERSION_TP_OK" in out.stdout
    return work


def _max_diff(a: Path, b: Path) -> float:
    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert x.shape == y.shape and x.dtype == y.dtype == torch.float32, (x.shape, y.shape, x.dtype)
    return (x - y).abs().max().item()


def test_model_pt_nemo_model_pt_is_bit_exact(results):
    assert results["model_pt_roundtrip"] == ""  # same keys, order, dtype (bf16) and bits
    assert results["overwrite_roundtrip"] == ""
    c = results["config_json"]
    assert (c["n_layers"], c["dim"], c["n_heads"], c["n_kv_heads"], c["video_latent_shape"]) == (2, 64, 4, 2, [3, 4, 6])


def test_tp_shards_nemo_tp_shards_is_bit_exact(results):
    assert results["tp_shards_roundtrip"] == ""  # also checks every written tensor is contiguous
    # contiguous shards carry only their part (cosmos-predict1's own script saves whole storages per shard)
    assert all(size < 0.6 * results["model_pt_size"] for size in results["tp_shard_sizes"])


def test_model_pt_nemo_hf_nemo_model_pt_is_bit_exact(results):
    assert results["hf_files"] == ["README.md", "config.json", "model.safetensors"]
    assert results["hf_roundtrip"] == ""


def test_training_checkpoint_and_custom_config_import(results):
    assert results["iter_roundtrip"] == ""
    assert results["custom_roundtrip"] == ""
    assert results["custom_config_back"]["n_layers"] == 1 and results["custom_config_back"]["apply_yarn"] is False


def test_convert_logits_matches_reference(work):
    """``cosmos-ar convert logits`` (Megatron-Core, fp32) on the imported tiny model vs the reference transformer."""
    ref = work / "ref_logits.pt"
    assert torch.load(ref, weights_only=True).shape == (2, get_preset("tiny").seq_length - 1, 64000)
    assert _max_diff(work / "logits_nemo_tp1.pt", ref) < TOL
    assert _max_diff(work / "logits_model_pt.pt", ref) < TOL


@pytest.mark.parametrize(
    "case, needles",
    [
        (
            "wrong_architecture",
            [
                "does not match the '4b' architecture",
                "tok_embeddings.weight: expected [64000, 4096], found [64000, 64]",
                "shapes of the 'tiny' preset",
            ],
        ),
        ("missing_key", ["missing keys (1): layers.1.feed_forward.w3.weight", "missing.pt"]),
        ("extra_key", ["unexpected keys (1): layers.0.attention.wqkv.weight", "extra.pt"]),
        ("truncated", ["truncated.pt is truncated or corrupt", "Copy or download it again"]),
        ("not_a_checkpoint", ["notes.pt is not a PyTorch checkpoint", "Pass the released model.pt"]),
        ("existing_import_output", ["nemo_tp1 already exists", "--overwrite"]),
        ("existing_export_output", ["back already exists", "--overwrite"]),
    ],
)
def test_errors_give_one_clear_message_and_leave_nothing(results, case, needles):
    r = results["errors"][case]
    assert r["rc"] == 1
    assert r["stderr"].startswith("cosmos-ar convert: error: ") and r["stderr"].count("error:") == 1
    assert "Traceback" not in r["stderr"]
    for n in needles:
        assert n in r["stderr"], (n, r["stderr"])
    assert r["leftovers"] == []
    assert r["output_exists"] == case.startswith("existing")  # refused outputs are left untouched
    assert results["nemo_tp1_after_refusal"] == ["context", "weights"]
    assert results["leftover_partials"] == []


def test_tp1_checkpoint_loads_at_tp2_and_tp2_import_is_exact(tp_work):
    ref = tp_work / "ref_logits.pt"
    assert _max_diff(tp_work / "logits_tp1_at_tp2.pt", ref) < TOL
    assert _max_diff(tp_work / "logits_tp2_at_tp2.pt", ref) < TOL
    distcp = os.listdir(tp_work / "nemo_tp2" / "weights")
    assert any(f.startswith("__1_") for f in distcp), distcp  # written by both ranks
    a, b = (torch.load(p, weights_only=True) for p in (tp_work / "model.pt", tp_work / "back_tp2" / "model.pt"))
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_tp2_checkpoint_loads_at_tp1_via_cli(tp_work):
    out = tp_work / "logits_tp2_at_tp1.pt"
    cmd = [str(BIN / "cosmos-ar"), "convert", "logits", "--checkpoint", str(tp_work / "nemo_tp2"), "--model", "tiny"]
    cmd += ["--tokens", str(tp_work / "tokens.pt"), "--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=child_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert _max_diff(out, tp_work / "ref_logits.pt") < TOL


def test_nemo_llm_import_cli(work, tmp_path):
    """``nemo llm import model=cosmos_ar_tiny source=pt://...`` (entry point -> model factory -> our importer)."""
    out = tmp_path / "nemo_cli"
    source = f"source=pt://{work / 'model.pt'}"
    cmd = [str(BIN / "nemo"), "llm", "import", "model=cosmos_ar_tiny", source, f"output_path={out}", "-y"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=child_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "weights" / ".metadata").exists() and (out / "context" / "io.json").exists()
    assert "CosmosARConfigTiny" in (out / "context" / "io.json").read_text()
