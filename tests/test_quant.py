"""Weight-only int8 for the batch-1 decode without Triton: the quantization (``quant.py``), what
``configure_decode(weights=...)`` accepts and refuses, and ``--decode-weights`` from the command line to the engine.
The int8 kernel and the decode step with it are tested in test_gemv_int8.py (Triton)."""

import pytest
import torch

from gen_assets import tiny_mcore_engine
from nemo_cosmos_ar.inference import engine as en
from nemo_cosmos_ar.inference import quant
from nemo_cosmos_ar.inference.options import GenerateOptions


def test_quantize_rows_exact_values():
    """Hand-computed rows: scale = max|w| / 127 exactly (fp32); round half to even; an all-zero row gets scale 1
    and q = 0; a row whose largest value is negative maps it to -127."""
    w = torch.tensor([[254.0, -127.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0], [-12.7, 1.27, 0.0, 6.35]])
    q, s = quant.quantize_rows(w)
    assert q.dtype == torch.int8 and s.dtype == torch.float32 and q.shape == (3, 4) and s.shape == (3,)
    assert s[0].item() == 2.0 and s[1].item() == 1.0
    assert s[2].item() == (torch.tensor(12.7) / 127).item()
    assert q[0].tolist() == [127, -64, 0, 2]  # -63.5 -> -64 and 0.5 -> 0, 1.5 -> 2: half to even
    assert q[1].tolist() == [0, 0, 0, 0]
    assert q[2].tolist() == [-127, 13, 0, 64]  # 1.27 / 0.1 = 12.7 -> 13; 6.35 / 0.1 = 63.5 (fp32: 63.500004) -> 64
    assert torch.equal(quant.dequantize(q, s, torch.float32)[1], torch.zeros(4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_quantize_rows_error_bound(dtype):
    """Random rows (spreads from 1e-3 to 1e2): q in [-127, 127], every nonzero row reaches +-127, and the
    dequantized fp32 values are within scale / 2 of the weight, plus fp32 rounding (values of up to 127 scales: one
    unit in the last place is 127 * 2^-23 = 1.5e-5 of the scale; 2e-5 allowed)."""
    g = torch.Generator().manual_seed(0)
    w = (torch.randn((64, 300), generator=g) * torch.logspace(-3, 2, 64)[:, None]).to(dtype)
    q, s = quant.quantize_rows(w)
    assert int(q.min()) >= -127 and int(q.max()) <= 127
    assert torch.equal(q.abs().amax(1), torch.full((64,), 127, dtype=torch.int8))
    assert torch.equal(s, w.float().abs().amax(1) / 127)
    err = (quant.dequantize(q, s, torch.float32) - w.float()).abs()
    assert (err <= s[:, None] * (0.5 + 2e-5)).all(), (err / s[:, None]).max().item()
    assert (err / s[:, None]).max().item() > 0.45  # the bound is tight: rounding does reach half a step
    deq = quant.dequantize(q, s, dtype)
    assert deq.dtype == dtype
    with pytest.raises(ValueError, match=r"quantize_rows: a weight of \[N, K\] is needed, got \(4,\)"):
        quant.quantize_rows(torch.ones(4))


@pytest.fixture(scope="module")
def tiny():
    """A tiny engine (fp32, CPU) of this file's own: the tests quantize it."""
    return tiny_mcore_engine(seed=3)


def test_configure_decode_int8_refusals_and_quantization(tiny):
    """int8 needs the gemv decode (fused step + gemv); unknown weight kinds are refused; on a CPU with both on it
    quantizes every decode projection once (the weights become q * scale, the state dict keeps its keys); after
    that bf16 is refused (the bf16 weights are gone)."""
    eng = tiny
    before = {k: v.clone() for k, v in eng.model.state_dict().items() if "_extra_state" not in k}
    tokens = torch.randint(0, 64000, (1, 12), generator=torch.Generator().manual_seed(1))
    logits_bf16 = eng.teacher_forced(tokens)
    msg = r"--decode-weights int8 needs the batch-1 matrix-vector decode: --fused-step and --decode-gemv on"
    with pytest.raises(ValueError, match=msg):
        en.configure_decode(eng, "sdpa", "on", "off", weights="int8")
    with pytest.raises(ValueError, match=msg):
        en.configure_decode(eng, "sdpa", "off", "off", weights="int8")
    with pytest.raises(ValueError, match=msg):
        en.configure_decode(eng, weights="int8")  # auto on a CPU: unfused, no gemv
    with pytest.raises(ValueError, match=r"decode weights must be bf16 or int8, got 'fp8'"):
        en.configure_decode(eng, "sdpa", "on", "on", weights="fp8")
    with pytest.raises(ValueError, match=r"decode int8 kernel must be one of auto, cuda, fused, triton, got 'cutlass'"):
        en.configure_decode(eng, "sdpa", "on", "on", weights="int8", int8_kernel="cutlass")
    # the CUDA kernel is refused on a CPU, before any weight changes
    with pytest.raises(ValueError, match=r"--decode-int8-kernel cuda: the CUDA kernel does not compile here"):
        en.configure_decode(eng, "sdpa", "on", "on", weights="int8", int8_kernel="cuda")
    assert eng.weights == "bf16" and not quant.is_quantized(eng.model)
    en.configure_decode(eng, "sdpa", "on", "on", weights="int8")
    assert (eng.weights, eng.fused_step, eng.gemv) == ("int8", True, True) and quant.is_quantized(eng.model)
    assert eng.int8_kernel == "triton"  # auto: the CUDA kernel only where it compiles
    mods = quant.decode_projections(eng.model)
    names = ("self_attention.linear_qkv", "self_attention.linear_proj", "mlp.linear_fc1", "mlp.linear_fc2")
    assert [n for n, _ in mods[:4]] == [f"decoder.layers.0.{m}" for m in names]
    assert all(dict(eng.model.named_modules())[n] is m for n, m in mods)
    assert len(mods) == 4 * 2 + 1 and mods[-1][0] == "output_layer"
    for name, m in mods:
        q, s = m.weight_int8, m.weight_scale
        assert q.dtype == torch.int8 and q.shape == m.weight.shape and s.shape == (m.weight.shape[0],)
        assert torch.equal(m.weight, quant.dequantize(q, s, m.weight.dtype)), name
        assert not torch.equal(m.weight, before[f"{name}.weight"]), name
        assert torch.equal(quant.quantize_rows(before[f"{name}.weight"])[0], q), name
    after = {k: v for k, v in eng.model.state_dict().items() if "_extra_state" not in k}
    assert sorted(after) == sorted(before)  # int8 copies are attributes, not buffers: checkpoints are unchanged
    assert torch.equal(after["embedding.word_embeddings.weight"], before["embedding.word_embeddings.weight"])
    # the teacher-forced forward (cuBLAS) now computes the quantized model: changed, by a few percent at most
    d = (eng.teacher_forced(tokens) - logits_bf16).abs().max().item()
    assert 1e-5 < d < 0.05 * logits_bf16.abs().max().item(), d
    again = {n: m.weight.clone() for n, m in mods}
    en.configure_decode(eng, "sdpa", "on", "on", weights="int8")  # idempotent: no second rounding
    assert all(torch.equal(m.weight, again[n]) for n, m in mods)
    assert quant.quantize_model(eng.model) == 0
    with pytest.raises(ValueError, match=r"--decode-weights bf16: this engine's weights were quantized to int8"):
        en.configure_decode(eng, "sdpa", "on", "on")


def test_quantize_model_reports_the_added_bytes():
    """One int8 byte per weight and 4 per row scale: for the tiny preset (2 layers, dim 64, q width 128, KV 2x32 so
    QKV rows 128 + 2 * 64, FFN 160, vocab 64000) that is 2 * (256*64 + 64*128 + 320*64 + 64*160) + 64000*64 weights
    and 2 * (256 + 64 + 320 + 64) + 64000 scales."""
    eng = tiny_mcore_engine(seed=4)
    weights = 2 * (256 * 64 + 64 * 128 + 320 * 64 + 64 * 160) + 64000 * 64
    scales = 2 * (256 + 64 + 320 + 64) + 64000
    assert quant.quantize_model(eng.model) == weights + 4 * scales


def test_decode_weights_from_the_command_line(tmp_path, monkeypatch):
    """--decode-weights: bf16 by default, int8 reaches GenerateOptions and the engine's configure_decode (the
    Runner's load); other values, other engines and batches are refused."""
    from nemo_cosmos_ar.cli import build_parser
    from nemo_cosmos_ar.cli.generate import options_from_args

    def opts(*extra):
        return options_from_args(build_parser().parse_args(["generate", "--input", "a.png", *extra]))

    assert opts().decode_weights == "bf16"
    assert opts("--decode-weights", "int8").decode_weights == "int8"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--input", "a.png", "--decode-weights", "fp8"])
    with pytest.raises(ValueError, match=r"--decode-weights int8 is for the Megatron engine's batch-1 decode: .*"):
        opts("--decode-weights", "int8", "--batch-size", "2")
    with pytest.raises(ValueError, match=r"\(got --engine reference, --batch-size 1\)"):
        opts("--decode-weights", "int8", "--engine", "reference")
    with pytest.raises(ValueError, match=r"--decode-weights must be bf16 or int8, got 'fp8'"):
        GenerateOptions(decode_weights="fp8")

    from nemo_cosmos_ar.inference import pipeline

    seen = []
    monkeypatch.setattr(en, "configure_decode", lambda eng, *a: seen.append(a) or eng)
    monkeypatch.setattr(en, "load_engine", lambda *a: "engine")
    runner = pipeline.Runner.__new__(pipeline.Runner)
    runner.engine, runner.ckpt, runner.device, runner.dtype, runner.seconds, runner.load_parts = (
        None, None, torch.device("cpu"), torch.float32, {"load": 0.0}, {},
    )  # fmt: skip
    runner.opts = opts("--decode-weights", "int8", "--decode-gemv", "on", "--fused-step", "on")
    assert runner.load_engine() == "engine"
    assert seen == [("auto", "on", "on", "auto", "int8", "auto", "auto")]  # ..., weights, reduce, int8 kernel
    runner.engine, seen[:] = None, []
    runner.opts = opts("--decode-weights", "int8", "--decode-reduce", "nccl", "--decode-int8-kernel", "triton")
    assert runner.load_engine() == "engine" and seen == [("auto", "auto", "auto", "auto", "int8", "nccl", "triton")]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--input", "a.png", "--decode-int8-kernel", "cutlass"])
    with pytest.raises(ValueError, match=r"--decode-int8-kernel must be one of \('auto', 'cuda', 'fused', 'triton'\)"):
        GenerateOptions(decode_int8_kernel="cutlass")
