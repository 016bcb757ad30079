"""The CUDA int8 decode kernel's host side (``inference/gemv_cuda.py``) on a CPU: the driver structures its
launches pass, the byte-to-float trick its source relies on, and that it is never picked where it cannot run. The
kernel itself runs in the GPU tier (``tests/test_gpu.py``)."""

import ctypes

import numpy as np
import pytest
import torch

from nemo_cosmos_ar.inference import gemv_cuda as GC


def test_launch_structures_match_the_driver_layout():
    """``CUlaunchConfig``: 7 uints, the stream at byte 32, the attribute pointer at 40, their count at 48 (56 in
    all); ``CUlaunchAttribute``: the id, 4 bytes of padding, a 64-byte union whose first int is the PDL flag."""
    assert ctypes.sizeof(GC._LaunchConfig) == 56
    assert (GC._LaunchConfig.stream.offset, GC._LaunchConfig.attrs.offset, GC._LaunchConfig.num_attrs.offset) == (
        32,
        40,
        48,
    )
    attr = GC._LaunchAttr()
    attr.id = GC._PROGRAMMATIC_STREAM_SERIALIZATION
    attr.value[0] = 1
    raw = bytes(attr)
    assert len(raw) == 72 and raw[:4] == (6).to_bytes(4, "little") and raw[8:12] == (1).to_bytes(4, "little")
    assert raw[12:] == bytes(60)


def test_byte_to_float_trick_gives_every_int8_value():
    """The kernel turns a signed byte b into ``float(0x4B000000 | (b ^ 0x80)) - 8388736`` (2^23 + 128): exact for
    all 256 values."""
    b = np.arange(-128, 128, dtype=np.int8)
    bits = np.uint32(0x4B000000) | (b.view(np.uint8) ^ np.uint8(0x80)).astype(np.uint32)
    values = bits.view(np.float32) - np.float32(8388736.0)
    assert np.array_equal(values, b.astype(np.float32))
    assert "0x4B000000u" in GC._SOURCE and "8388736.0f" in GC._SOURCE and "0x80808080u" in GC._SOURCE


def test_never_picked_on_a_cpu():
    """``available`` is False off CUDA, so ``pick`` keeps the Triton kernel for auto and refuses cuda in one line;
    ``fits`` refuses CPU operands."""
    cpu = torch.device("cpu")
    assert not GC.available(cpu, pdl=False)
    assert GC.pick("auto", cpu, False) == "triton" and GC.pick("triton", cpu, False) == "triton"
    with pytest.raises(ValueError, match=r"^--decode-int8-kernel cuda: the CUDA kernel does not compile here"):
        GC.pick("cuda", cpu, False)
    q = torch.zeros(8, 32, dtype=torch.int8)
    assert not GC.fits(torch.zeros(32, dtype=torch.bfloat16), q, torch.ones(8))
    assert not GC.fits(torch.zeros(32, dtype=torch.bfloat16), q, None)
