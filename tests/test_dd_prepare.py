"""The first guided step's unconditional pass computed ahead (``DiffusionDecoder.prepare``): it depends on the seeded
noise alone, so generate can start it while the AR model generates (``pipeline.EARLY_UNCOND``). With NVIDIA's two
separate passes (``batch_guidance=False``) the video is bit-equal to the one without it; with the guidance batch of
2 it differs only in rounding; a seed or grid that was not prepared, or a failure on the thread, leaves the decode
as it was."""

import pytest
import torch

from gen_assets import cli_args, make_assets, make_diffusion_decoder
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.diffusion_decoder import pipeline as ddp
from nemo_cosmos_ar.diffusion_decoder.config import SamplerConfig
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT
from nemo_cosmos_ar.inference import pipeline, writer

GRID = (5, 2, 2)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddprep")
    return write_random_decoder(root / "dd", "tiny", seed=0), write_random_cv_tokenizer(root / "cv", "tiny", seed=0)


def _tokens(seed=4):
    return torch.randint(0, 64000, (1, *GRID), generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def forwards(monkeypatch):
    """The batch size of every DiT forward, in call order."""
    calls = []
    real = DiffusionDecoderDiT.forward
    monkeypatch.setattr(
        DiffusionDecoderDiT, "forward", lambda s, x, *a, **k: calls.append(x.shape[0]) or real(s, x, *a, **k)
    )
    return calls


@pytest.mark.parametrize("batched", [False, True], ids=["two passes", "guidance batch"])
def test_prepared_first_step_gives_the_video_of_the_plain_decode(folders, forwards, batched):
    sc = SamplerConfig(batch_guidance=batched)
    dd = ddp.DiffusionDecoder(*folders, device="cpu", sampler=sc)
    want = dd.decode_tokens(_tokens(), seed=3)
    assert dd.stats.prepared is False
    steps = sc.num_steps
    assert forwards == ([2] * steps if batched else [1] * 2 * steps)
    forwards.clear()
    dd.prepare([3], GRID)
    got = dd.decode_tokens(_tokens(), seed=3)
    assert dd.stats.prepared is True
    # the prepared pass (batch 1) first, then the first step's conditional pass alone, then the other steps as before
    assert forwards == ([1, 1] + [2] * (steps - 1) if batched else [1] * 2 * steps)
    if batched:  # a batch of 1 instead of 2 for one pass: rounding only
        assert (got - want).abs().max().item() < 1e-4
    else:  # the same batch-1 calls in another order: every value equal
        assert torch.equal(got, want)
    assert dd._prepared is None and dd._prepared_out == {}  # used once, then gone
    again = dd.decode_tokens(_tokens(), seed=3)
    assert dd.stats.prepared is False and torch.equal(again, want)


def test_another_seed_or_grid_is_not_used(folders, forwards):
    dd = ddp.DiffusionDecoder(*folders, device="cpu", sampler=SamplerConfig(batch_guidance=False))
    want = dd.decode_tokens(_tokens(), seed=3)
    dd.prepare([4], GRID)  # another seed
    assert torch.equal(dd.decode_tokens(_tokens(), seed=3), want) and dd.stats.prepared is False
    dd.prepare([3], (5, 2, 4))  # another grid
    assert torch.equal(dd.decode_tokens(_tokens(), seed=3), want) and dd.stats.prepared is False
    dd.prepare([5, 3], GRID)  # several videos: each decode takes its own
    assert torch.equal(dd.decode_tokens(_tokens(), seed=3), want) and dd.stats.prepared is True
    dd.decode_tokens(_tokens(), seed=5)
    assert dd.stats.prepared is True and dd._prepared is None


def test_a_failure_on_the_thread_leaves_the_decode_as_it_was(folders, monkeypatch):
    dd = ddp.DiffusionDecoder(*folders, device="cpu", sampler=SamplerConfig(batch_guidance=False))
    want = dd.decode_tokens(_tokens(), seed=3)
    real = DiffusionDecoderDiT.forward

    def fails_on_its_thread(self, *a, **k):
        import threading

        if threading.current_thread().name == "cosmos-ar-dd-prepare":
            raise RuntimeError("CUDA out of memory")
        return real(self, *a, **k)

    monkeypatch.setattr(DiffusionDecoderDiT, "forward", fails_on_its_thread)
    dd.prepare([3], GRID)
    assert torch.equal(dd.decode_tokens(_tokens(), seed=3), want) and dd.stats.prepared is False


def test_background_load_then_prepare(folders):
    """Beside the constructor's background load: prepare waits for the DiT on its own thread."""
    sc = SamplerConfig(batch_guidance=False)
    dd = ddp.DiffusionDecoder(*folders, device="cpu", background=True, sampler=sc)
    dd.prepare([3], GRID)
    got = dd.decode_tokens(_tokens(), seed=3)
    assert dd.stats.prepared is True
    assert torch.equal(got, ddp.DiffusionDecoder(*folders, device="cpu", sampler=sc).decode_tokens(_tokens(), seed=3))


def test_generate_with_early_uncond_prepares_after_the_prefill(tmp_path_factory, tmp_path, monkeypatch, capsys):
    """``EARLY_UNCOND``: generate starts the pass once the AR prefill is done; the tokens are unchanged and the video
    is the decoder's output for them within rounding (tiny random weights, fp32 on CPU)."""
    assets = make_assets(tmp_path_factory.mktemp("ddprep_assets"))
    ckdir = make_diffusion_decoder(tmp_path_factory.mktemp("ddprep_ck"))
    videos, prepared = {}, []
    real_frames, real_prepare = writer.host_frames, ddp.DiffusionDecoder.prepare
    monkeypatch.setattr(ddp.DiffusionDecoder, "prepare", lambda s, *a: prepared.append(a) or real_prepare(s, *a))
    for early in (False, True):

        def frames(video, layout, early=early):
            videos[early] = video.clone()
            return real_frames(video, layout)

        monkeypatch.setattr(pipeline, "EARLY_UNCOND", early)
        monkeypatch.setattr(writer, "host_frames", frames)
        tok = tmp_path / f"{early}.pt"
        flags = ("--checkpoint-dir", str(ckdir), "--disable-guardrail", "--no-progress", "--seed", "7")
        argv = cli_args(assets, assets / "input.png", tmp_path / f"{early}.mp4", *flags, "--save-tokens", str(tok))
        assert main(argv) == 0
        beside = "the first unconditional pass ran beside the AR decode" in capsys.readouterr().out
        assert beside is early  # the timing line says so
    assert prepared == [([7], (5, 4, 6))]  # once, with the run's seed and grid
    tokens = [torch.load(tmp_path / f"{e}.pt", weights_only=True) for e in (False, True)]
    assert torch.equal(*tokens)
    assert (videos[True] - videos[False]).abs().max().item() < 1e-4
