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
    ddp.DiffusionDecoderDiT.forward = lambda self, x, *a: (
        seen.append((len(self.blocks), tuple(x.shape))) or real(self, x, *a)
    )
    try:
        assert dd.warm_kernels((2, 2)) > 0
    finally:
        ddp.DiffusionDecoderDiT.forward = real
    cfg = dd.dit_config
    assert seen == [(1, (2, cfg.latent_channels, 8, 4, 4))]  # cond + uncond batched, 8 latent frames, 2x per side
    assert torch.equal(dd.decode_tokens(_tokens(), seed=2), want)


def test_a_deferred_load_starts_when_asked_or_at_the_first_decode(folders):
    want = ddp.DiffusionDecoder(*folders, device="cpu").decode_tokens(_tokens(), seed=2)
    dd = ddp.DiffusionDecoder(*folders, device="cpu", background=True, start_now=False)
    assert dd._loader is not None and dd._loader.ident is None and dd.network is None  # checked, not started
    dd.start_loading()
    started = dd._loader.ident
    dd.start_loading()  # a second call is a no-op (a thread cannot start twice)
    assert started is not None and dd._loader.ident == started
    assert torch.equal(dd.decode_tokens(_tokens(), seed=2), want) and dd._loader is None
    lazy = ddp.DiffusionDecoder(*folders, device="cpu", background=True, start_now=False)
    assert torch.equal(lazy.decode_tokens(_tokens(), seed=2), want)  # never asked: the decode starts it


def test_generate_starts_the_deferred_load_once_the_decode_loop_runs(monkeypatch):
    from nemo_cosmos_ar.inference import generator as gen
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer

    cfg = get_preset("tiny").with_latent_shape((2, 2, 3))
    torch.manual_seed(0)
    model = ReferenceTransformer(cfg).eval()
    events = []
    real_prefill = gen.ReferenceEngine.prefill
    monkeypatch.setattr(gen.ReferenceEngine, "prefill", lambda *a: events.append("prefill") or real_prefill(*a))
    seq, stats = gen.generate_tokens(
        model,
        torch.zeros(1, 6, dtype=torch.long),
        12,
        gen.SamplingConfig(),
        on_decode_start=lambda: events.append("start"),
    )
    assert events == ["prefill", "start"] and seq.shape == (1, 12) and stats.generated_tokens == 6
