"""3D RoPE against a direct, loop-by-loop evaluation of cosmos-predict1's formula
(``autoregressive/modules/embedding.py``: ``RotaryPositionEmbedding.get_inv_freq``, ``compute_freqs``,
``RotaryPositionEmbeddingPytorchV2``)."""

import math

import torch

from nemo_cosmos_ar.model import rope3d
from nemo_cosmos_ar.model.presets import get_preset


def direct_angle(p: int, d: int, cfg) -> float:
    """Angle of head-dim channel d for sequence position p, written out from the spec with Python floats."""
    T, H, W = cfg.latent_shape
    t, h, w = p // (H * W), (p // W) % H, p % W
    D = cfg.head_dim
    dim_s = D // 6 * 2
    dim_t = D - 2 * dim_s
    i = d % (D // 2)  # the half vector is repeated twice
    if i < dim_t // 2:
        pos, k, n, axis_len = t, i, dim_t, 0
    elif i < dim_t // 2 + dim_s // 2:
        pos, k, n, axis_len = h, i - dim_t // 2, dim_s, 1
    else:
        pos, k, n, axis_len = w, i - dim_t // 2 - dim_s // 2, dim_s, 1
    omega = cfg.rope_theta ** (-(2 * k) / n)
    if cfg.apply_yarn:
        L0 = cfg.original_latent_shape[0] if axis_len == 0 else cfg.original_latent_shape[1]
        hi, lo = 2 * math.pi * cfg.yarn_beta_fast / L0, 2 * math.pi * cfg.yarn_beta_slow / L0
        m = min(max((omega - lo) / (hi - lo), 0.0), 1.0)
        omega *= (1 - m) / cfg.yarn_scale + m
    return pos * omega


def _check_table(cfg, positions):
    table = rope3d.rope_3d_table(cfg, torch.tensor(positions))
    assert table.shape == (len(positions), 1, 1, cfg.head_dim) and table.dtype == torch.float32
    for row, p in enumerate(positions):
        for d in range(cfg.head_dim):
            want = direct_angle(p, d, cfg)
            assert abs(table[row, 0, 0, d].item() - want) <= 1e-6 * max(1.0, abs(want)), (p, d)


def test_axis_split_4b():
    assert rope3d.axis_dims(128) == (44, 42, 42)
    inv_t, inv_s = rope3d.axis_inv_freqs(128, 500000.0)
    assert inv_t.shape == (22,) and inv_s.shape == (21,)


def test_table_matches_formula_4b_with_positions_past_first_frame():
    cfg = get_preset("4b")
    hw = 40 * 64
    # first token, inside frame 0, frame boundaries, the last token and positions past the grid (KV-cache decoding)
    _check_table(cfg, [0, 1, 63, 64, 65, hw - 1, hw, hw + 70, 3 * hw + 2555, cfg.seq_length - 1, cfg.seq_length + 5])


def test_table_matches_formula_12b_yarn():
    cfg = get_preset("12b")
    _check_table(cfg, [0, 1, 64, 2560 + 64 + 1, 12799])


def test_yarn_factors_12b_values():
    # YaRN factors of cosmos-predict1's formula for the 12B: temporal all x0.5, spatial [1.0, 0.901, 0.637, 0.5, ...].
    cfg = get_preset("12b")
    inv_t, inv_s = rope3d.axis_inv_freqs(128, cfg.rope_theta)
    ft = rope3d.yarn_factors(inv_t, 2.0, 4.0, 1.0, 3)
    fs = rope3d.yarn_factors(inv_s, 2.0, 4.0, 1.0, 40)
    assert torch.allclose(ft, torch.full_like(ft, 0.5))
    assert torch.allclose(fs[:3], torch.tensor([1.0, 0.901, 0.637]), atol=1e-3)
    assert torch.allclose(fs[3:], torch.full_like(fs[3:], 0.5))


def test_module_offset_equals_slice_and_has_no_state():
    cfg = get_preset("tiny")
    mod = rope3d.RotaryEmbedding3D(cfg)
    full = mod(cfg.seq_length + 30)
    assert torch.equal(mod(10, offset=40), full[40:50])
    assert len(mod.state_dict()) == 0 and len(list(mod.buffers())) == 0


def test_rotate_half_pairs_i_with_i_plus_half():
    d = 8
    x = torch.zeros(1, d)
    x[0, 1] = 1.0
    ang = torch.zeros(1, d)
    ang[0, 1] = ang[0, 1 + d // 2] = math.pi / 2
    y = rope3d.apply_rope(x, ang)
    # channel 1 rotates into channel 1 + d/2: (x1, x5) = (1, 0) -> (cos, sin) = (0, 1)
    assert torch.allclose(y[0], torch.eye(d)[1 + d // 2], atol=1e-6)
