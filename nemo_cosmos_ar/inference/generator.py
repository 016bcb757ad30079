"""Autoregressive decoding of a video token grid with a KV cache, and loading a native checkpoint to decode with.

What cosmos-predict1's ``AutoRegressiveModel.generate`` does for the base models (reference §6.3), on the plain
PyTorch transformer of ``model/reference.py``:

* the prompt is the first latent frame(s) of the tokenized input (1 frame for an image, 2 for a 9-frame video);
* **prefill**: one forward over the prompt fills every layer's KV cache and gives the logits of the first new token;
* **decode**: one token per step at absolute position p (3D RoPE row p), attending to the cache, until the grid
  (T'·H'·W' tokens) is full;
* the result is the whole grid, the prompt echoed in front of the generated tokens (``echo=True``).

The base model's head has exactly the 64,000 video codes, so there is no stop token and no BOS to strip.
"""

from __future__ import annotations

import gc
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.inference.sampling import SamplingConfig, sample
from nemo_cosmos_ar.model.checkpoint_mapping import CheckpointMismatch, native_shapes
from nemo_cosmos_ar.model.config import TEMPORAL_COMPRESSION, CosmosARConfig
from nemo_cosmos_ar.model.presets import PRESETS, get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer

# cosmos-predict1 ``_SUPPORTED_CONTEXT_LEN``: a prompt is one image or the last 9 frames of a video.
SUPPORTED_INPUT_FRAMES = (1, 9)
# Every output is one 33-frame chunk of the tokenizer (5 latent frames).
NUM_OUTPUT_FRAMES = 33


def prompt_latent_frames(num_input_frames: int) -> int:
    """Latent frames that ``num_input_frames`` pixel frames fill in the causal tokenizer: 1 -> 1, 9 -> 2.

    The tokenizer encodes frame 0 alone and then 8 frames per latent frame, so the first ``1 + (n-1)/8`` latent
    frames of the padded 33-frame clip depend only on the real input frames, never on the padding.
    """
    if num_input_frames not in SUPPORTED_INPUT_FRAMES:
        raise ValueError(f"num_input_frames must be one of {SUPPORTED_INPUT_FRAMES} (an image or the last 9 frames "
                         f"of a video, as cosmos-predict1), got {num_input_frames}")  # fmt: skip
    return 1 + (num_input_frames - 1) // TEMPORAL_COMPRESSION


@dataclass
class DecodeStats:
    """Timings of one ``generate_tokens`` call (seconds; device work included: the clock stops after a sync)."""

    prompt_tokens: int
    generated_tokens: int
    prefill_s: float
    decode_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.decode_s if self.decode_s > 0 else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# How one decoding step runs: "dynamic" = ``model(token, start=pos)`` attending to the filled part of the cache;
# "static" = ``model.forward_step`` (fixed shapes, the whole cache under a mask); "graph" = that step captured once
# in a CUDA graph and replayed (CUDA only); "auto" = graph on CUDA, dynamic elsewhere.
STEP_MODES = ("auto", "dynamic", "static", "graph")


class _GraphStep:
    """``model.forward_step`` captured in a CUDA graph: one replay per token instead of ~1,000 kernel launches.

    The inputs live in static buffers (token, position); the captured kernels read the position on the device, so
    a replay costs a few microseconds of CPU. Warm-up and capture run at the cache's last slot, which decoding never
    reads (the last token's logits would predict past the grid) and never writes.
    """

    def __init__(self, model: ReferenceTransformer, cache: list[dict], batch: int, device: torch.device) -> None:
        self.model, self.cache = model, cache
        self.token = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.pos = torch.full((1,), cache[0]["k"].shape[1] - 1, dtype=torch.long, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up on a side stream, as CUDA graph capture requires
            for _ in range(2):
                model.forward_step(self.token, self.pos, cache)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = model.forward_step(self.token, self.pos, cache)

    def __call__(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits ``[B, V]``: a static buffer, overwritten by the next call (read it before stepping again)."""
        self.token.copy_(tokens)
        self.pos.fill_(pos)
        self.graph.replay()
        return self.logits


def _step_fn(mode: str, model: ReferenceTransformer, cache: list[dict], batch: int, device: torch.device):
    if mode not in STEP_MODES:
        raise ValueError(f"step mode must be one of {STEP_MODES}, got {mode!r}")
    if mode == "auto" and device.type == "cuda":
        try:
            return _GraphStep(model, cache, batch, device)
        except RuntimeError as err:  # e.g. a kernel that cannot be captured on this torch/CUDA: slower, not wrong
            warnings.warn(f"CUDA graph capture of the decoding step failed ({err}); decoding eagerly", stacklevel=3)
            mode = "static"
    if mode == "graph":
        if device.type != "cuda":
            raise ValueError("CUDA graphs need the model on a CUDA device; use step mode 'static' or 'dynamic'")
        return _GraphStep(model, cache, batch, device)
    if mode == "static":
        pos_buf = torch.zeros(1, dtype=torch.long, device=device)
        return lambda tokens, pos: model.forward_step(tokens, pos_buf.fill_(pos), cache)
    return lambda tokens, pos: model(tokens, start=pos, cache=cache)[:, -1]


@torch.inference_mode()
def generate_tokens(
    model: ReferenceTransformer,
    prompt: torch.Tensor,
    total_tokens: int,
    sampling: SamplingConfig,
    generator: torch.Generator | None = None,
    *,
    progress: bool = False,
    on_logits: Callable[[int, torch.Tensor], None] | None = None,
    step_mode: str = "auto",
) -> tuple[torch.Tensor, DecodeStats]:
    """Extend ``prompt`` to ``total_tokens`` tokens: prefill, then one token at a time with a KV cache.

    Args:
        model: the transformer, on its device and dtype, in eval mode; its config's ``latent_shape`` must be the grid
            being generated (it fixes the 3D RoPE position of every token).
        prompt: ``[B, P]`` int64 token ids (``P >= 1``), flattened row-major from the grid (W fastest).
        total_tokens: length of the result (T'·H'·W' for a whole grid); at most ``model.cfg.seq_length``.
        sampling: temperature / top-k / top-p.
        generator: seeded ``torch.Generator`` on the model's device (None: the global RNG).
        progress: show a tqdm bar over the generated tokens (on stderr).
        on_logits: called as ``on_logits(p, logits [B, V])`` with the logits that token ``p`` is drawn from (tests
            compare them with a teacher-forced forward). Copy them to keep them: with CUDA graphs the buffer is
            reused.
        step_mode: how decoding steps run, one of ``STEP_MODES`` (default: a CUDA graph on CUDA, eager elsewhere).

    Returns:
        ``([B, total_tokens] int64 on the model's device, stats)``; ``result[:, :P] == prompt``.
    """
    device = model.output.weight.device
    if prompt.ndim != 2 or prompt.shape[1] < 1 or prompt.is_floating_point():
        raise ValueError(
            f"prompt must be integer token ids [B, P] with P >= 1, got {tuple(prompt.shape)} {prompt.dtype}"
        )
    batch, num_prompt = prompt.shape
    if not num_prompt <= total_tokens <= model.cfg.seq_length:
        raise ValueError(f"total_tokens={total_tokens} must lie between the prompt length {num_prompt} and the "
                         f"model's grid {list(model.cfg.latent_shape)} = {model.cfg.seq_length} tokens")  # fmt: skip
    out = torch.empty(batch, total_tokens, dtype=torch.long, device=device)
    out[:, :num_prompt] = prompt.to(device)
    # Static cache for the whole grid, allocated once (cosmos-predict1 does the same): decoding never reallocates.
    cache = model.new_cache(batch, total_tokens, device=device)

    # Built (and on CUDA captured) before the prefill: capture runs at the cache's last slot, which nothing reads.
    step = _step_fn(step_mode, model, cache, batch, device) if total_tokens > num_prompt + 1 else None

    _sync(device)
    t0 = time.perf_counter()
    logits = model(out[:, :num_prompt], start=0, cache=cache)[:, -1]
    _sync(device)
    t1 = time.perf_counter()
    bar = None
    if progress and total_tokens > num_prompt:
        from tqdm import tqdm

        bar = tqdm(total=total_tokens - num_prompt, unit="tok", desc="generating", dynamic_ncols=True)
    for pos in range(num_prompt, total_tokens):
        if on_logits is not None:
            on_logits(pos, logits)
        out[:, pos] = sample(logits, sampling, generator)
        if pos + 1 < total_tokens:  # the last token's logits would predict past the grid
            logits = step(out[:, pos : pos + 1], pos)
        if bar is not None:
            bar.update(1)
    _sync(device)
    t2 = time.perf_counter()
    if bar is not None:
        bar.close()
    del cache, step
    return out, DecodeStats(num_prompt, total_tokens - num_prompt, t1 - t0, t2 - t1)


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path, model: str | CosmosARConfig | None = None) -> tuple[CosmosARConfig, dict]:
    """Open a native checkpoint (memory-mapped, ``weights_only=True``) and check it against an architecture.

    Args:
        path: ``model.pt`` (flat dict with ``model.`` keys), a training ``iter_*.pt``, TP shards or a Hugging Face
            folder -- whatever ``conversion.native_io.load_native`` reads.
        model: a preset name (tiny, 4b, 12b), a cosmos-predict1 ``config.json`` path, a ``CosmosARConfig``, or None
            (a ``config.json`` next to the weights, else the preset whose shapes the weights have).

    Returns:
        ``(config, state dict without the "model." prefix)``; tensors stay memory-mapped in their stored dtype.

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointMismatch: the weights do not fit; the one-line message names the first offending key, its shape
            and the expected one.
    """
    requested = requested_config(model) if model is not None else None
    ckpt = native_io.load_native(path)
    try:
        cfg = native_io.resolve_config(ckpt, requested)
    except CheckpointMismatch as err:
        raise CheckpointMismatch(_one_line_mismatch(ckpt, requested, err)) from None
    return cfg, ckpt.tensors


def requested_config(model: str | CosmosARConfig) -> CosmosARConfig:
    """A preset name (tiny, 4b, 12b), a cosmos-predict1 ``config.json`` path, or a config as is."""
    if isinstance(model, CosmosARConfig):
        return model
    if str(model).lower() in PRESETS:
        return get_preset(str(model))
    if not Path(model).is_file():
        raise ValueError(f"--model {model!r} is neither a preset ({', '.join(PRESETS)}) nor a config.json file")
    return CosmosARConfig.from_json(str(model))


def _one_line_mismatch(ckpt: native_io.NativeCheckpoint, cfg: CosmosARConfig | None, err: CheckpointMismatch) -> str:
    """``check_native``'s multi-line report as one line: the first wrong key with both shapes, and a hint."""
    if cfg is None:  # the architecture came from a config.json next to the weights, or from no preset at all
        return " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    want = native_shapes(cfg)
    wrong = [k for k, s in want.items() if k in ckpt.tensors and tuple(ckpt.tensors[k].shape) != s]
    missing = [k for k in want if k not in ckpt.tensors]
    if wrong:
        k = wrong[0]
        what = (
            f"tensor {k} has shape {list(ckpt.tensors[k].shape)}, the {cfg.name!r} model expects {list(want[k])} "
            f"({len(wrong)} of {len(want)} tensors differ in shape, {len(missing)} missing)"
        )
    elif missing:
        what = f"key {missing[0]} (expected shape {list(want[missing[0]])}) is missing ({len(missing)} keys missing)"
    else:
        extra = [k for k in ckpt.tensors if k not in want]
        what = f"unexpected key {extra[0] if extra else '?'} ({len(extra)} unexpected)"
    hint = native_io.preset_for_shapes(ckpt.tensors)
    hint = (
        f"; the weights have the shapes of the {hint!r} preset (--model {hint})" if hint and hint != cfg.name else ""
    )
    return f"{ckpt.name} does not fit the {cfg.name!r} architecture: {what}{hint}"


def build_model(
    cfg: CosmosARConfig, state: dict, device: torch.device | str, dtype: torch.dtype
) -> ReferenceTransformer:
    """The reference transformer holding ``state``, on ``device`` in ``dtype``, eval mode, no grad.

    Built on the meta device and filled with ``assign=True``: no random initialisation of 4B parameters and no
    second full copy of the weights on the host before they move to ``device``.
    """
    with torch.device("meta"):
        model = ReferenceTransformer(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_model(
    path: str | Path,
    model: str | CosmosARConfig | None = None,
    *,
    latent_shape: tuple[int, int, int] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ReferenceTransformer:
    """``read_checkpoint`` + ``build_model``; ``latent_shape`` sets the grid to generate (default: the config's)."""
    cfg, state = read_checkpoint(path, model)
    if latent_shape is not None:
        cfg = cfg.with_latent_shape(latent_shape)
    return build_model(cfg, state, device, dtype)


def free_memory(device: torch.device | str) -> None:
    """What cosmos-predict1's offloading does after ``del``: collect, then hand cached CUDA blocks back."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
