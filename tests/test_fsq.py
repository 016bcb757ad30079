"""FSQ of the DV8x16x16 tokenizer: codebook size, index formula, round trip over all 64,000 codes, bound formula."""

import math

import torch

from nemo_cosmos_ar.tokenizer import fsq


def test_codebook_and_basis():
    assert fsq.LEVELS == (8, 8, 8, 5, 5, 5)
    assert fsq.CODEBOOK_SIZE == fsq.codebook_size() == 64000
    assert fsq.basis().tolist() == [1, 8, 64, 512, 2560, 12800]


def test_indices_codes_indices_is_identity_on_all_codes():
    idx = torch.arange(64000)
    codes = fsq.indices_to_codes(idx)
    assert codes.shape == (64000, 6) and codes.dtype == torch.float32
    assert torch.equal(fsq.codes_to_indices(codes), idx)
    # Every code is distinct, and codes survive bf16 exactly.
    assert torch.unique(codes, dim=0).shape[0] == 64000
    assert torch.equal(fsq.codes_to_indices(codes.bfloat16()), idx)
    # Value sets: level 8 -> {-1, -0.75, ..., 0.75}; level 5 -> {-1, -0.5, 0, 0.5, 1}.
    assert sorted(codes[:, 0].unique().tolist()) == [k / 4 for k in range(-4, 4)]
    assert sorted(codes[:, 5].unique().tolist()) == [-1.0, -0.5, 0.0, 0.5, 1.0]


def test_index_formula_is_zero_based_first_channel_least_significant():
    # Digit vector c (0-based per channel) -> index sum(c_i * basis_i).
    digits = torch.tensor([[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [7, 7, 7, 4, 4, 4]])
    half = torch.tensor([4, 4, 4, 2, 2, 2])
    codes = (digits - half) / half
    assert fsq.codes_to_indices(codes).tolist() == [0, 1, 8, 63999]


def test_quantize_matches_the_bound_formula():
    torch.manual_seed(0)
    z = torch.randn(4096, 6) * 3
    levels = torch.tensor(fsq.LEVELS, dtype=torch.float64)
    half = (levels - 1) * (1 + 1e-3) / 2
    off = torch.where(levels % 2 == 0, 0.5, 0.0).double()
    expected_digits = torch.round(torch.tanh(z.double() + torch.atanh(off / half)) * half - off) + levels // 2
    codes = fsq.quantize(z)
    digits = codes * (levels // 2).float() + (levels // 2).float()
    # float64 vs float32 may only disagree where bound(z) lands within float error of x.5.
    assert (digits.double() != expected_digits).float().mean() < 1e-3
    assert digits.min() >= 0 and (digits <= levels - 1).all()
    # Large inputs reach the outer levels, including the lowest (-1) and the highest (L-1)/2 / (L//2).
    extremes = fsq.quantize(torch.tensor([[-50.0] * 6, [50.0] * 6]))
    assert extremes[0].tolist() == [-1.0] * 6
    assert extremes[1].tolist() == [0.75, 0.75, 0.75, 1.0, 1.0, 1.0]


def test_module_matches_pure_functions_and_keeps_released_buffers():
    q = fsq.FSQuantizer()
    assert set(q.state_dict()) == {"_levels", "_basis", "implicit_codebook"}
    assert q.implicit_codebook.shape == (64000, 6) and q._levels.dtype == torch.int32
    torch.manual_seed(1)
    z = torch.randn(2, 6, 3, 4, 5) * 2
    indices, codes, dummy = q(z)
    assert indices.shape == (2, 3, 4, 5) and indices.dtype == torch.int32 and dummy.shape == (2,)
    assert torch.equal(codes.movedim(1, -1), fsq.quantize(z.movedim(1, -1)))
    assert torch.equal(indices.long(), fsq.codes_to_indices(codes.movedim(1, -1)))
    assert torch.equal(q.indices_to_codes(indices), codes)
    # bf16 latents quantise through float32, like the released bf16 encoder.
    ib, cb, _ = q(z.bfloat16())
    expected = fsq.codes_to_indices(fsq.quantize(z.bfloat16().float().movedim(1, -1)))
    assert cb.dtype == torch.bfloat16 and torch.equal(ib.long(), expected)
    assert math.prod(q.levels) == 64000
