"""The diffusion decoder's background load (``DiffusionDecoder(background=True)``, what generate uses): the same
video as a load in the constructor; a file with a bad key still fails in the constructor (before any AR work); an
error inside the thread is raised by the first ``decode_tokens``, and a later call loads what is missing."""

import pytest
import torch

from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp
from nemo_cosmos_ar.diffusion_decoder.checkpoint import CheckpointError
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddbg")
    return write_random_decoder(root / "dd", "tiny", seed=0), write_random_cv_tokenizer(root / "cv", "tiny", seed=0)


def _tokens():
    return torch.randint(0, 64000, (1, 5, 2, 2), generator=torch.Generator().manual_seed(4))


def test_background_load_gives_the_same_video(folders):
    want = ddp.DiffusionDecoder(*folders, device="cpu").decode_tokens(_tokens(), seed=2)
    dd = ddp.DiffusionDecoder(*folders, device="cpu", background=True)
    got = dd.decode_tokens(_tokens(), seed=2)
    assert dd._loader is None and dd.network is not None and dd.tokenizer is not None
    assert torch.equal(got, want) and dd.startup_s["network"] > 0 and dd.startup_s["tokenizer"] > 0


def test_a_bad_key_fails_in_the_constructor(folders, tmp_path):
    dd_dir, cv_dir = folders
    sd = torch.load(dd_dir / "model.pt", weights_only=True)
    sd["net.final_layer.linear.weight"] = sd["net.final_layer.linear.weight"][:, :-1].clone()
    bad = tmp_path / "dd"
    bad.mkdir()
    torch.save(sd, bad / "model.pt")
    (bad / "aux_vars.pt").write_bytes((dd_dir / "aux_vars.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"net.final_layer.linear.weight has shape \[\d+, \d+\], expected"):
        ddp.DiffusionDecoder(bad, cv_dir, device="cpu", background=True)


def test_an_error_in_the_thread_is_raised_by_the_first_decode(folders, monkeypatch):
    def broken(*a, **k):
        raise ValueError("decoder.jit: unreadable")

    monkeypatch.setattr(ddp, "load_cv_decoder", broken)
    dd = ddp.DiffusionDecoder(*folders, device="cpu", background=True)  # returns before the thread fails
    with pytest.raises(ValueError, match="decoder.jit: unreadable"):
        dd.decode_tokens(_tokens(), seed=2)
    monkeypatch.undo()  # a later call loads what is missing (as an offloaded decoder does) and decodes
    want = ddp.DiffusionDecoder(*folders, device="cpu").decode_tokens(_tokens(), seed=2)
    assert torch.equal(dd.decode_tokens(_tokens(), seed=2), want)


def test_warm_kernels_runs_one_block_at_the_chunk_shapes_and_changes_nothing(folders):
    dd = ddp.DiffusionDecoder(*folders, device="cpu")
    want = dd.decode_tokens(_tokens(), seed=2)
    seen = []
    real = ddp.DiffusionDecoderDiT.forward
    ddp.DiffusionDecoderDiT.forward = lambda self, x, *a, **k: (
        seen.append((len(self.blocks), tuple(x.shape), k)) or real(self, x, *a, **k)
    )
    try:
        assert dd.warm_kernels((2, 2)) > 0
    finally:
        ddp.DiffusionDecoderDiT.forward = real
    cfg = dd.dit_config
    # cond + uncond batched (the uncond row's cross-attention skipped, as in sampling), 8 latent frames, 2x per side
    assert seen == [(1, (2, cfg.latent_channels, 8, 4, 4), {"context_rows": 1})]
    assert torch.equal(dd.decode_tokens(_tokens(), seed=2), want)
