"""The Megatron-Core model computes what the original Cosmos AR transformer computes (fp32, CPU)."""

import pytest
import torch

from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer

TOL = 1e-5  # max |Δlogit| in fp32


def _mcore_logits(model, tokens):
    pos = torch.arange(tokens.shape[1])[None].expand(tokens.shape[0], -1)
    with torch.no_grad():
        return model(tokens, pos, None)


@pytest.mark.parametrize("yarn", [True, False])
def test_tiny_mcore_matches_reference(megatron_tp1, yarn):
    from nemo_cosmos_ar.model.mcore import build_gpt_model

    cfg = get_preset("tiny")
    cfg.apply_yarn = yarn
    ref = ReferenceTransformer(cfg).init_random(seed=3)
    model = build_gpt_model(cfg)
    missing, unexpected = model.load_state_dict(cm.native_to_mcore(ref.state_dict(), cfg), strict=False)
    assert [k for k in missing if not k.endswith("_extra_state")] == [] and unexpected == []
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.seq_length), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = ref(tokens)
    got = _mcore_logits(model, tokens)
    assert got.shape == (2, cfg.seq_length, cfg.vocab_size)
    assert (got - want).abs().max().item() < TOL
    # Negative control: Q/K/V concatenated without the per-group interleave must be visibly wrong.
    bad = cm.native_to_mcore(ref.state_dict(), cfg)
    for i in range(cfg.n_layers):
        p = f"layers.{i}.attention."
        bad[f"decoder.layers.{i}.self_attention.linear_qkv.weight"] = torch.cat(
            [ref.state_dict()[p + "wq.weight"], ref.state_dict()[p + "wk.weight"], ref.state_dict()[p + "wv.weight"]]
        )
    model.load_state_dict(bad, strict=False)
    assert (_mcore_logits(model, tokens) - want).abs().max().item() > 1e-2


def test_reference_kv_cache_decoding_matches_full_forward():
    cfg = get_preset("tiny")
    ref = ReferenceTransformer(cfg).init_random(seed=1)
    tokens = torch.randint(0, cfg.vocab_size, (1, cfg.seq_length), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = ref(tokens)
        cache = ref.new_cache(1, cfg.seq_length)
        prompt = cfg.tokens_per_latent_frame
        parts = [ref(tokens[:, :prompt], start=0, cache=cache)]
        for p in range(prompt, cfg.seq_length):
            parts.append(ref(tokens[:, p : p + 1], start=p, cache=cache))
    assert (torch.cat(parts, 1) - full).abs().max().item() < TOL


def test_tp2_logits_match_tp1():
    from conftest import run_torchrun

    out = run_torchrun("tp_parity.py", nproc=2)
    assert "TP2_PARITY_OK" in out.stdout, out.stdout
