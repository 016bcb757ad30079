"""The diffusion decoder on two ranks (``diffusion_decoder/parallel.py``): each rank runs one pass of the guidance;
the video equals one rank's unbatched decode exactly, rank 1 makes no frames and loads no CV8x8x8 decoder, and a
load that fails on one rank raises on both (nobody waits forever). On four ranks each pass is also cut by context
parallelism: the video equals one rank's within fp32 rounding, only rank 0 makes frames, and a failed load on one
rank raises on all four. Under torchrun with gloo on CPU."""

import json
import shutil

import pytest
import torch

from conftest import run_torchrun
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder
from nemo_cosmos_ar.diffusion_decoder.parallel import ContextParallel, GuidanceSplit, split_for_rank


def test_split_roles():
    assert split_for_rank(0, 1) is None  # one process: both passes here
    assert split_for_rank(0, 2) == GuidanceSplit(0) and split_for_rank(1, 4) == GuidanceSplit(1)
    assert split_for_rank(2, 4) is None  # ranks past the pair take no part
    with pytest.raises(ValueError, match="roles 0 .conditional. and 1 .unconditional., got 2"):
        GuidanceSplit(2)
    assert GuidanceSplit(0).makes_frames and not GuidanceSplit(1).makes_frames
    assert GuidanceSplit(0, cp=ContextParallel(0, 2)).makes_frames
    assert not GuidanceSplit(0, cp=ContextParallel(1, 2)).makes_frames  # rank 2 of four: conditional, no frames
    assert GuidanceSplit(1, cp=ContextParallel(2, 3)).ranks == 6


def test_context_parallel_spans():
    cp = [ContextParallel(i, 4) for i in range(4)]
    assert [c.span(20480) for c in cp] == [(0, 5120), (5120, 10240), (10240, 15360), (15360, 20480)]
    assert [c.span(14) for c in cp] == [(0, 3), (3, 7), (7, 10), (10, 14)]  # uneven: counts differ by one at most
    assert [ContextParallel(i, 3).span(20480) for i in range(3)] == [(0, 6826), (6826, 13653), (13653, 20480)]
    with pytest.raises(ValueError, match=r"over 4 GPUs needs at least 4 tokens, got 3"):
        cp[0].span(3)
    with pytest.raises(ValueError, match=r"index in \[0, size\) and size >= 2, got 2, 2"):
        ContextParallel(2, 2)
    # the warm-up's stand-in: the whole length from this rank's slice, no process group (waits for nobody)
    local = cp[1].stand_in()
    assert local.span(14) == (3, 7) and local.group is None
    x = torch.arange(8.0).reshape(1, 4, 2)
    assert torch.equal(local.gather(x, 1), torch.cat([x] * 4, 1)[:, :14])


def test_context_parallel_gathers_uneven_slices():
    """Four ranks (gloo) gather slices of 12, 13, 14 and 15 rows along dims 0 and 1: the whole, in order."""
    run_torchrun("cp_gather.py", nproc=4)


def _folders(tmp_path):
    """The tiny decoder and CV8x8x8 folders, a copy of the decoder with a truncated ``model.pt``, an output folder
    and ``spec.json`` naming them (the scripts' input); returns ``(out, broken)``."""
    dd = write_random_decoder(tmp_path / "dd", "tiny", seed=0)
    cv = write_random_cv_tokenizer(tmp_path / "cv", "tiny", seed=0)
    broken = tmp_path / "broken"
    shutil.copytree(dd, broken)
    data = (broken / "model.pt").read_bytes()
    (broken / "model.pt").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    spec = {"decoder": str(dd), "cv": str(cv), "broken": str(broken), "out": str(out)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return out, broken


def test_two_ranks_give_the_one_rank_video_and_fail_together(tmp_path):
    out, broken = _folders(tmp_path)
    run_torchrun("dd_guidance_split.py", "--spec", str(tmp_path / "spec.json"), nproc=2)
    res = json.loads((out / "results.json").read_text())
    split, unbatched, batched = (
        torch.load(out / f"{n}.pt", weights_only=True) for n in ("split", "single_unbatched", "single_batched")
    )
    assert split.shape == (1, 3, 65, 32, 32) and res["rank0_chunks"] == 2  # 9 latent frames: two chunks
    assert torch.equal(split, unbatched)  # the same kernels on the same inputs, on another rank
    assert (split - batched).abs().max() < 1e-5  # one batch of two: other GEMM shapes, fp32
    assert res["rank1_returned_none"] is True and res["rank1_loaded_cv"] is False
    (name0, msg0), (name1, msg1) = res["broken"]
    assert "model.pt" in msg1 and str(broken) in msg1, msg1
    assert (
        name0 == "ValueError"
        and msg0 == f"loading the diffusion decoder failed on the other GPU of the guidance split: {msg1}"
    )


def test_four_ranks_cut_each_pass_by_context_parallelism(tmp_path):
    out, broken = _folders(tmp_path)
    run_torchrun("dd_context_parallel.py", "--spec", str(tmp_path / "spec.json"), nproc=4)
    res = json.loads((out / "results.json").read_text())
    roles = [(r["role"], r["cp"], r["makes_frames"], r["returned_video"], r["loaded_cv"]) for r in res["ranks"]]
    assert roles == [
        (0, [0, 2], True, True, True),
        (1, [0, 2], False, False, False),
        (0, [1, 2], False, False, False),
        (1, [1, 2], False, False, False),
    ]
    cp, single = (torch.load(out / f"{n}.pt", weights_only=True) for n in ("cp", "single"))
    assert cp.shape == single.shape == (1, 3, 65, 32, 32) and res["chunks"] == 2
    # each rank's queries against all keys: other matrix shapes than one rank's, so fp32 rounding only
    assert (cp - single).abs().max() < 1e-5
    assert not torch.equal(cp, torch.zeros_like(cp))
    messages = res["broken"]
    assert all(m is not None for m in messages), messages  # every rank raised: nobody waits forever
    name3, msg3 = messages[3]
    assert "model.pt" in msg3 and str(broken) in msg3, msg3
    for name, msg in messages[:3]:
        assert name == "ValueError" and msg == (
            f"loading the diffusion decoder failed on GPU 3 of the guidance split: {msg3}"
        )
