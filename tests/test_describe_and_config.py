import json
import subprocess
import sys

import pytest
import torch

from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.config import CosmosARConfig, latent_shape_for
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer


def _describe(*args):
    out = subprocess.run(
        [sys.executable, "-m", "nemo_cosmos_ar.cli", "describe", *args], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_describe_4b():
    out = _describe("--model", "4b", "--resolution", "640x1024", "--num-frames", "33")
    assert "4,014,088,192 (4.014 B" in out
    assert "5x40x64" in out and "12,800" in out


def test_describe_12b_and_small_grid():
    out = _describe("--model", "12b", "--resolution", "384x640", "--num-frames", "33")
    assert "11,560,975,360 (11.561 B" in out and "5x24x40" in out and "4,800" in out and "3,840" in out


def test_describe_bad_frames_is_clear_error():
    out = subprocess.run(
        [sys.executable, "-m", "nemo_cosmos_ar.cli", "describe", "--num-frames", "32"], capture_output=True, text=True
    )
    assert out.returncode == 1 and "not 1+8k" in out.stderr


def test_latent_shapes():
    assert latent_shape_for(33, 640, 1024) == (5, 40, 64)
    assert latent_shape_for(33, 384, 640) == (5, 24, 40)
    assert latent_shape_for(33, 640, 848) == (5, 40, 53)
    with pytest.raises(ValueError, match="multiple of 16"):
        latent_shape_for(33, 100, 640)


def test_4b_key_count_and_shapes():
    shapes = cm.native_shapes(get_preset("4b"))
    assert len(shapes) == 179
    assert shapes["layers.3.attention.wk.weight"] == (1024, 4096)
    assert shapes["layers.15.feed_forward.w2.weight"] == (4096, 14336)
    assert sum(torch.Size(s).numel() for s in shapes.values()) == get_preset("4b").num_params()


def test_config_json_round_trip(tmp_path):
    cfg = get_preset("12b")
    cfg.to_json(tmp_path / "config.json")
    back = CosmosARConfig.from_json(str(tmp_path / "config.json"))
    assert back == cfg
    (tmp_path / "bad.json").write_text(json.dumps({"dim": 8}))
    with pytest.raises(ValueError, match="missing architecture field"):
        CosmosARConfig.from_json(str(tmp_path / "bad.json"))


@pytest.mark.parametrize("spec", ["local", "te"])
def test_native_mcore_round_trip_is_bit_exact(spec):
    cfg = get_preset("tiny")
    native = {k: v.to(torch.bfloat16) for k, v in ReferenceTransformer(cfg).init_random(4).state_dict().items()}
    mc = cm.native_to_mcore(native, cfg, spec)
    assert sorted(mc) == cm.mcore_keys(cfg, spec)
    back = cm.mcore_to_native(mc, cfg, spec)
    assert list(back) == list(cm.native_shapes(cfg))
    assert all(torch.equal(back[k], native[k]) and back[k].dtype == torch.bfloat16 for k in native)


def test_check_native_names_every_problem():
    cfg = get_preset("tiny")
    native = ReferenceTransformer(cfg).state_dict()
    native.pop("layers.1.ffn_norm.weight")
    native["extra.weight"] = torch.zeros(1)
    native["layers.0.attention.wq.weight"] = torch.zeros(3, 3)
    with pytest.raises(cm.CheckpointMismatch) as e:
        cm.check_native(native, cfg, "x.pt")
    msg = str(e.value)
    assert "layers.1.ffn_norm.weight" in msg and "extra.weight" in msg
    assert "layers.0.attention.wq.weight: expected [128, 64], found [3, 3]" in msg
