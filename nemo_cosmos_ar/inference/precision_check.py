"""What the two lossy speed flags change, measured on the user's own weights and video (``cosmos-ar check-precision``).

Why: ``--decode-weights int8`` (the AR decode's products on int8 weights) and ``--diffusion-decoder-gemm fp8`` (the
DiT's projections in e4m3) make one video ~12 s faster on an H200, and they change the output. Their error has only
been measured on random weights (BENCHMARKS.md, issue 13); trained weights have outlier rows and channels that
random ones lack, so the numbers that decide whether a user may turn them on must come from the user's checkpoint.
This module computes them from one real clip, where the right answer is known:

* **AR, int8 weights.** The clip's 33 frames are tokenized to its ``[T', H', W']`` grid. The model's teacher-forced
  logits at every position ``generate`` samples (after the prompt's latent frames) are computed with the bf16 weights,
  then again after ``quant.quantize_model`` (which leaves the dequantized int8 values in the bf16 weights: the model
  the int8 decode computes; the int8 kernels differ from it only by rounding). Reported: the mean negative
  log-likelihood of the clip's real next tokens under each (nats/token: does the quantized model predict real video
  as well?), top-1 agreement, ``KL(bf16 || int8)`` of the softmax at the sampling temperature, and the total
  variation between the two sampling distributions (temperature and top-p as ``generate`` draws): the chance that
  one step's token differs when both are drawn with shared randomness, at best.
* **Diffusion decoder, FP8 GEMMs.** The same grid decoded with bf16 and with FP8 GEMMs from the same noise seed. Its
  job is to reconstruct the clip from the tokens, so each video's PSNR against the clip's own frames says how well it
  does it. The yardstick for the FP8-vs-bf16 difference is two bf16 decodes with different seeds: how much the
  output moves with the sampling noise alone. The DV8x16x16 decoder's PSNR is the floor the diffusion decoder should
  beat.

* **Speculative decoding** (not about precision: it keeps the distribution). How many tokens a step accepts is a
  property of the weights; ``check_speculative`` generates the clip's continuation both ways and reports it.

PSNR is over pixels in [0, 1] (the frames written are the [-1, 1] model range mapped there): ``10 log10(1 / MSE)``.
No NeMo import; the AR model is the Megatron-Core ``GPTModel`` of ``engine.py`` at TP=1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.data.token_layout import flatten_grid
from nemo_cosmos_ar.inference.options import IMAGE_SUFFIXES
from nemo_cosmos_ar.inference.sampling import SamplingConfig, sampling_probs

ROWS_PER_CHUNK = 256  # scored positions per fp32 pass: 256 x 64,000 x 4 B = 66 MB per temporary at the 4B's vocab


@dataclass
class ARPrecision:
    """The AR model with bf16 weights against the same model with int8-quantized decode weights, on one clip."""

    positions: int  # scored positions (the tokens generate would sample for this prompt length)
    nll_bf16: float  # mean -log p(real next token), nats
    nll_int8: float
    top1_agreement: float  # fraction of positions where both models' most likely token is the same
    kl_mean: float  # mean KL(p_bf16 || p_int8) of softmax(logits / T), nats
    kl_max: float
    tv_mean: float  # mean total variation of the sampling distributions (temperature, top-p)
    logit_rel_l2: float  # ||l_int8 - l_bf16|| / ||l_bf16|| over all scored logits
    logit_max_abs: float
    # Not about int8: how often a draft that copies the previous latent frame's token at the same place would be
    # accepted by speculative sampling from the bf16 model (the mean probability the sampling distribution gives
    # it), and how often the clip's real token equals it. The number that decides whether that lossless speed-up
    # (same distribution, fewer weight reads per token) is worth building; it needs trained weights to mean anything.
    draft_acceptance: float | None = None
    draft_equal: float | None = None
    # Speculative decoding (``--speculative-window``, lossless) from the clip's prompt with the bf16 weights: the
    # tokens each forward accepted, which decides its speed-up, and both decoders' seconds for the same tokens.
    speculative: dict | None = None
    seconds: float = 0.0
    peak_memory_gib: float | None = None  # CUDA: the largest allocation during the check (model included)

    @property
    def nll_change(self) -> float:
        """Relative change of the clip's NLL, int8 against bf16 (positive: int8 predicts the real tokens worse)."""
        return (self.nll_int8 - self.nll_bf16) / self.nll_bf16 if self.nll_bf16 else 0.0


@dataclass
class DDPrecision:
    """The diffusion decoder with bf16 GEMMs against FP8 GEMMs, on one clip's tokens (PSNR in dB)."""

    psnr_bf16: float  # bf16 decode (seed s) against the clip
    psnr_fp8: float  # FP8 decode (seed s) against the clip
    psnr_fp8_vs_bf16: float  # the two decodes against each other
    psnr_seed_vs_seed: float | None  # bf16 seed s against bf16 seed s + 1: the noise's own effect (None: not run)
    psnr_dv: float | None  # the DV8x16x16 decoder against the clip (None: not run)
    seconds: float = 0.0
    peak_memory_gib: float | None = None  # CUDA: the largest allocation of one decode (the decoder resets it)


@dataclass
class PrecisionReport:
    input: str
    frames: int
    resolution: tuple[int, int]
    grid: tuple[int, int, int]
    prompt_latent_frames: int
    sampling: dict = field(default_factory=dict)
    ar: ARPrecision | None = None
    dd: DDPrecision | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.ar is not None:
            out["ar"]["nll_change"] = self.ar.nll_change
        return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in the model range [-1, 1] (any equal shapes), over pixels in [0, 1]."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: videos of different shapes {tuple(a.shape)} and {tuple(b.shape)}")
    mse = ((a.double() - b.double()) / 2).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def read_clip(path: Path, start: int, num_frames: int, height: int, width: int) -> torch.Tensor:
    """``[3, num_frames, height, width]`` float32 in [-1, 1]: frames ``start ..`` of a video, resized and
    centre-cropped as ``prepare-data`` and ``generate`` do. A missing file, an image, a file that is no video or one
    too short is a one-line error naming it (the frame count is probed before anything is decoded)."""
    need = f"a video of at least {start + num_frames} frames is needed ({num_frames} from frame {start})"
    if not path.is_file():
        raise FileNotFoundError(f"--input {path}: no such file; {need}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"--input {path} is an image; {need}")
    try:
        frames = video_io.probe(path).num_frames
    except video_io.VideoError as e:
        raise ValueError(f"--input {e}") from None
    if frames < start + num_frames:
        raise ValueError(f"--input {path} has {frames} frames; {need} (--start-frame moves the window)")
    try:
        return video_io.read_video(path, num_frames=num_frames, start=start, size=(height, width))
    except video_io.VideoError as e:  # a frame count the container misreports
        raise ValueError(f"--input {e}") from None


@torch.no_grad()
def compare_logits(
    ref: torch.Tensor,
    test: torch.Tensor,
    targets: torch.Tensor,
    sampling: SamplingConfig,
    drafts: torch.Tensor | None = None,
) -> dict[str, float]:
    """The ``ARPrecision`` statistics of two logit sets ``[N, V]`` (any float dtype, one device) for the real next
    tokens ``targets [N]``, in fp32, ``ROWS_PER_CHUNK`` rows at a time; with ``drafts [N]`` also the mean
    probability ``ref``'s sampling distribution gives them."""
    if ref.shape != test.shape or ref.dim() != 2 or targets.shape != ref.shape[:1]:
        raise ValueError(f"compare_logits: shapes {tuple(ref.shape)}, {tuple(test.shape)}, {tuple(targets.shape)}")
    temp = sampling.temperature if sampling.temperature > 0 else 1.0  # greedy: the KL at T = 1 (TV is 1 - top-1)
    sums = dict.fromkeys(("nll_ref", "nll_test", "agree", "kl", "tv", "diff2", "ref2", "draft"), 0.0)
    kl_max = max_abs = 0.0
    for lo in range(0, ref.shape[0], ROWS_PER_CHUNK):
        a, b = ref[lo : lo + ROWS_PER_CHUNK].float(), test[lo : lo + ROWS_PER_CHUNK].float()
        t = targets[lo : lo + ROWS_PER_CHUNK].to(a.device)[:, None]
        la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
        sums["nll_ref"] -= la.gather(1, t).sum().item()
        sums["nll_test"] -= lb.gather(1, t).sum().item()
        sums["agree"] += (a.argmax(-1) == b.argmax(-1)).sum().item()
        lta, ltb = torch.log_softmax(a / temp, -1), torch.log_softmax(b / temp, -1)
        kl = (lta.exp() * (lta - ltb)).sum(-1).clamp_min(0)  # clamp: rounding can make an equal pair -1e-9
        sums["kl"] += kl.sum().item()
        kl_max = max(kl_max, kl.max().item())
        pa, pb = sampling_probs(a, sampling), sampling_probs(b, sampling)
        sums["tv"] += (pa - pb).abs().sum(-1).mul(0.5).sum().item()
        if drafts is not None:
            sums["draft"] += pa.gather(1, drafts[lo : lo + ROWS_PER_CHUNK].to(a.device)[:, None]).sum().item()
        sums["diff2"] += (b - a).square().sum().item()
        sums["ref2"] += a.square().sum().item()
        max_abs = max(max_abs, (b - a).abs().max().item())
    n = ref.shape[0]
    return {
        "nll_bf16": sums["nll_ref"] / n,
        "nll_int8": sums["nll_test"] / n,
        "top1_agreement": sums["agree"] / n,
        "kl_mean": sums["kl"] / n,
        "kl_max": kl_max,
        "tv_mean": sums["tv"] / n,
        "logit_rel_l2": math.sqrt(sums["diff2"] / sums["ref2"]) if sums["ref2"] else 0.0,
        "logit_max_abs": max_abs,
        **({"draft_acceptance": sums["draft"] / n} if drafts is not None else {}),
    }


def check_speculative(engine, prompt: torch.Tensor, total: int, sampling: SamplingConfig, window: int, seed: int):
    """Generate ``total`` tokens from ``prompt [1, P]`` with the one-token decoder and with speculative decoding
    (window ``window``, previous-frame drafts), both as ``generate`` runs them and times them (compiling and graph
    capture outside the decode's seconds). Returns the ``ARPrecision.speculative`` record."""
    from nemo_cosmos_ar.inference import generator as gen

    def run(opts, length=total):
        g = torch.Generator(device=engine.device).manual_seed(seed)
        return gen.generate_tokens(engine, prompt.to(engine.device), length, sampling, g, options=opts)[1]

    base = run(gen.DecodeOptions())
    spec = run(gen.DecodeOptions(speculative=window))
    return {
        "window": window,
        "tokens": spec.generated_tokens,
        "forwards": spec.forwards,
        "tokens_per_forward": spec.generated_tokens / spec.forwards if spec.forwards else float("nan"),
        "seconds": spec.decode_s,
        "one_token_seconds": base.decode_s,
    }


@torch.no_grad()
def check_ar(
    engine, grid_tokens: torch.Tensor, prompt_frames: int, sampling: SamplingConfig, speculative_window: int = 0,
    seed: int = 0,
) -> ARPrecision:  # fmt: skip
    """Teacher-forced logits of ``engine`` (a TP=1 ``McoreEngine``, bf16 weights) on ``grid_tokens [1, T', H', W']``,
    before and after ``quant.quantize_model``, at the positions after the first ``prompt_frames`` latent frames;
    with ``speculative_window`` also ``check_speculative`` from the clip's prompt (bf16, before quantizing). The
    engine's weights are quantized afterwards (load it again for bf16)."""
    from nemo_cosmos_ar.inference import quant

    if quant.is_quantized(engine.model):
        raise ValueError("check_ar: the engine's weights are already int8-quantized; load the model again")
    if engine.tp != 1:
        raise ValueError(f"check_ar: runs at TP=1 (one process); this engine is at TP={engine.tp}")
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(engine.device)  # from the model's own weights on
    start = time.perf_counter()
    seq = flatten_grid(grid_tokens).long()  # [1, S]
    first = prompt_frames * grid_tokens.shape[2] * grid_tokens.shape[3]  # first generated position
    targets = seq[0, first:]
    frame = grid_tokens.shape[2] * grid_tokens.shape[3]
    drafts = seq[0, first - frame : seq.shape[1] - frame]  # the same place one latent frame earlier
    # logits at position i predict token i + 1
    ref = engine.teacher_forced(seq[:, :-1])[0, first - 1 :].clone()
    spec = None
    if speculative_window:
        spec = check_speculative(engine, seq[:, :first], seq.shape[1], sampling, speculative_window, seed)
    quant.quantize_model(engine.model)
    test = engine.teacher_forced(seq[:, :-1])[0, first - 1 :]
    stats = compare_logits(ref, test, targets, sampling, drafts)
    return ARPrecision(
        positions=targets.numel(),
        draft_equal=(targets == drafts).double().mean().item(),
        speculative=spec,
        seconds=time.perf_counter() - start,
        peak_memory_gib=_peak(engine.device),
        **stats,
    )


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


@torch.no_grad()
def check_dd(
    make_decoder: Callable[[str], object],
    grid_tokens: torch.Tensor,
    clip: torch.Tensor,
    seed: int,
    dv_decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed_yardstick: bool = True,
    say: Callable[[str], None] = print,
) -> DDPrecision:
    """Decode ``grid_tokens [1, T', H', W']`` with ``make_decoder("bf16")`` and ``make_decoder("fp8")`` (each a
    ``DiffusionDecoder``, closed after use so one 7B network is resident at a time) from the noise of ``seed``, and
    score both against ``clip [3, T, H, W]``; ``seed_yardstick``: a second bf16 decode from ``seed + 1``;
    ``dv_decode``: the DV8x16x16 decoder's video of the same grid, scored too."""
    start = time.perf_counter()
    truth = clip[None].float()
    videos: dict[str, torch.Tensor] = {}
    peak = None
    for gemm in ("bf16", "fp8"):
        dd = make_decoder(gemm)
        try:
            seeds = (seed, seed + 1) if gemm == "bf16" and seed_yardstick else (seed,)
            for s in seeds:
                say(f"diffusion decoder, {gemm} GEMMs, seed {s} ...")
                videos[f"{gemm}/{s}"] = dd.decode_tokens(grid_tokens, seed=s)[:, :, : truth.shape[2]].float()
                if dd.stats.peak_memory_gib:
                    peak = max(peak or 0.0, dd.stats.peak_memory_gib)
        finally:
            dd.close()
    a, b = videos[f"bf16/{seed}"], videos[f"fp8/{seed}"]
    if a.shape != truth.shape:
        raise ValueError(f"the diffusion decoder gave a {list(a.shape)} video for a {list(truth.shape)} clip")
    dv = None
    if dv_decode is not None:
        say("DV8x16x16 decoder ...")
        dv = psnr(dv_decode(grid_tokens)[:, :, : truth.shape[2]].float().cpu(), truth)
    return DDPrecision(
        psnr_bf16=psnr(a, truth),
        psnr_fp8=psnr(b, truth),
        psnr_fp8_vs_bf16=psnr(a, b),
        psnr_seed_vs_seed=psnr(a, videos[f"bf16/{seed + 1}"]) if seed_yardstick else None,
        psnr_dv=dv,
        seconds=time.perf_counter() - start,
        peak_memory_gib=peak,
    )


def _rows(*rows: tuple[str, str]) -> list[str]:
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


def format_report(r: PrecisionReport) -> str:
    """The human-readable table ``cosmos-ar check-precision`` prints."""
    lines = [
        f"clip: {r.input}, {r.frames} frames at {r.resolution[0]}x{r.resolution[1]}, grid {'x'.join(map(str, r.grid))}",
    ]
    if r.ar is not None:
        a = r.ar
        temp, top_p = r.sampling.get("temperature"), r.sampling.get("top_p")
        lines += ["", f"AR model, --decode-weights int8 against bf16 ({a.positions:,} positions after a "
                  f"{r.prompt_latent_frames}-frame prompt; {a.seconds:.1f} s)"]  # fmt: skip
        rows = [
            ("NLL of the clip's real tokens", f"{a.nll_bf16:.4f} -> {a.nll_int8:.4f} nats/token "
             f"({100 * a.nll_change:+.2f}%)"),
            ("top-1 agreement", f"{100 * a.top1_agreement:.2f}%"),
            (f"KL(bf16 || int8), T={temp}", f"mean {a.kl_mean:.2e}, max {a.kl_max:.2e} nats"),
            (f"total variation, T={temp} top-p={top_p}", f"mean {a.tv_mean:.4f}"),
            ("logits", f"rel. L2 {a.logit_rel_l2:.2e}, max |diff| {a.logit_max_abs:.3f}"),
        ]  # fmt: skip
        if a.draft_acceptance is not None:  # not about int8: the outlook of a lossless speed-up (see ARPrecision)
            rows.append(
                ("previous-frame draft (bf16)", f"accepted with probability {a.draft_acceptance:.3f}; the clip's "
                 f"token equals it {100 * (a.draft_equal or 0):.1f}% of the time"),
            )  # fmt: skip
        if a.speculative:  # lossless: what --speculative-window would do for this prompt on these weights
            sp = a.speculative
            rows.append(
                (f"--speculative-window {sp['window']} (bf16)", f"{sp['tokens']:,} tokens in {sp['forwards']:,} "
                 f"forwards ({sp['tokens_per_forward']:.2f} each): {sp['seconds']:.1f} s against "
                 f"{sp['one_token_seconds']:.1f} s one token a step ({sp['one_token_seconds'] / sp['seconds']:.2f}x)"),
            )  # fmt: skip
        lines += _rows(*rows)
    if r.dd is not None:
        d = r.dd
        fmt = lambda x: "not run" if x is None else f"{x:.2f} dB"  # noqa: E731
        lines += ["", f"diffusion decoder, --diffusion-decoder-gemm fp8 against bf16 ({d.seconds:.1f} s)"]
        lines += _rows(
            ("PSNR against the clip", f"bf16 {d.psnr_bf16:.2f} dB, fp8 {d.psnr_fp8:.2f} dB "
             f"({d.psnr_fp8 - d.psnr_bf16:+.2f} dB)"),
            ("fp8 against bf16, same seed", f"{d.psnr_fp8_vs_bf16:.2f} dB"),
            ("bf16, seed against seed + 1", f"{fmt(d.psnr_seed_vs_seed)} (the noise's own effect)"),
            ("DV8x16x16 decoder (the floor)", fmt(d.psnr_dv)),
        )  # fmt: skip
        if d.psnr_seed_vs_seed is not None:
            within = d.psnr_fp8_vs_bf16 >= d.psnr_seed_vs_seed
            lines.append(f"  -> FP8 moves the video {'less' if within else 'MORE'} than a change of seed does")
    parts = (("AR", r.ar), ("decoder", r.dd))
    peaks = [f"{name} {x.peak_memory_gib:.1f} GiB" for name, x in parts if x is not None and x.peak_memory_gib]
    if peaks:
        lines += ["", f"peak GPU memory: {', '.join(peaks)}"]
    return "\n".join(lines)
