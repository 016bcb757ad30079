"""Image or 9-frame video in, 33-frame video out: the steps of ``cosmos-ar generate``.

The order of cosmos-predict1's base pipeline with ``--disable_diffusion_decoder --disable_guardrail`` (reference
§6.2-6.7):

1. read the input: an image (one frame) or the **last** ``num_input_frames`` (9) frames of a video, resize so the
   frame covers the model resolution keeping its aspect ratio, centre-crop, scale to [-1, 1], pad to 33 frames by
   repeating the last frame;
2. tokenize the 33 frames with the DV8x16x16 encoder -> grid ``[5, H/16, W/16]``; the prompt is its first latent
   frame (image) or first two (9 frames), which the causal tokenizer computes from the real frames only;
3. generate the rest of the grid with the AR model (KV cache, temperature + top-p, seeded);
4. decode the whole grid (prompt re-decoded too) with the DV decoder, write 33 frames, uint8 RGB, 25 fps, MP4,
   atomically.

Offloading (§6.5) deletes a module after use and reloads it from disk when it is next needed; it never moves
modules to the CPU. Without it the model and tokenizer are both loaded up front and stay resident.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.data.token_layout import flatten_grid, unflatten_grid
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.sampling import SamplingConfig
from nemo_cosmos_ar.model.config import SPATIAL_COMPRESSION, CosmosARConfig, latent_shape_for
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
OUTPUT_FPS = 25.0  # cosmos-predict1 writes its outputs at 25 fps (imageio.mimsave(..., fps=25))
DEFAULT_TOKENIZER = "checkpoints/Cosmos-Tokenize1-DV8x16x16-720p"
DEFAULT_CHECKPOINT = "checkpoints/Cosmos-Predict1-4B/model.pt"


@dataclass(kw_only=True)
class GenerateOptions:
    """Everything one generation needs. Paths are checked before anything heavy is loaded.

    Attributes:
        input: image (``.png``, ``.jpg`` ...) or video file.
        output: MP4 to write; refused if it exists unless ``overwrite``.
        checkpoint: native model (``model.pt`` with ``model.`` keys, ``iter_*.pt``, TP shards, HF folder).
        tokenizer: folder with ``encoder.jit`` and ``decoder.jit`` (Cosmos-Tokenize1-DV8x16x16-720p layout).
        model: architecture: preset name or ``config.json``; None = from the checkpoint (config.json or shapes).
        num_input_frames: 9 (last 9 frames of a video) or 1; images always use 1.
        resolution: ``(height, width)`` of the output; None = the model's grid × 16 (640x1024 for 4B/12B).
        sampling: temperature / top-p / top-k.
        seed: seed of the sampling generator.
        device: ``"cuda"``, ``"cpu"`` ...; None = CUDA when available.
        dtype: model dtype; None = bf16 on CUDA (as cosmos-predict1), fp32 on CPU.
        tokenizer_dtype: tokenizer dtype; None = ``dtype``.
        tokenizer_backend: ``"eager"`` (this package's network, any dtype) or ``"jit"`` (the TorchScript files).
        offload_ar_model: load the model right before generating and delete it right after.
        offload_tokenizer: load the tokenizer for encoding, delete it, reload it for decoding.
        overwrite: replace an existing output.
        save_tokens: also save the full token grid ``[1, T', H', W']`` int64 (``torch.save``) here.
        progress: tqdm bar over the generated tokens.
        step_mode: how decoding steps run (``generator.STEP_MODES``; "auto": a CUDA graph on GPU, eager on CPU).
    """

    input: Path
    output: Path = Path("outputs/output.mp4")
    checkpoint: Path = Path(DEFAULT_CHECKPOINT)
    tokenizer: Path = Path(DEFAULT_TOKENIZER)
    model: str | CosmosARConfig | None = None
    num_input_frames: int = 9
    resolution: tuple[int, int] | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0
    device: str | None = None
    dtype: torch.dtype | None = None
    tokenizer_dtype: torch.dtype | None = None
    tokenizer_backend: str = "eager"
    offload_ar_model: bool = False
    offload_tokenizer: bool = False
    overwrite: bool = False
    save_tokens: Path | None = None
    progress: bool = True
    step_mode: str = "auto"

    def __post_init__(self) -> None:
        self.input, self.output, self.checkpoint, self.tokenizer = (
            Path(p) for p in (self.input, self.output, self.checkpoint, self.tokenizer)
        )
        if self.save_tokens is not None:
            self.save_tokens = Path(self.save_tokens)
        if self.is_image:
            self.num_input_frames = 1  # as cosmos-predict1's validate_args: an image is a one-frame prompt
        gen.prompt_latent_frames(self.num_input_frames)  # validates 1 or 9

    @property
    def is_image(self) -> bool:
        return self.input.suffix.lower() in IMAGE_SUFFIXES


@dataclass
class GenerationResult:
    """What ``generate_video`` produced.

    Attributes:
        output: the MP4 written.
        tokens: ``[1, T', H', W']`` int64 on the CPU, prompt latent frame(s) first.
        prompt_latent_frames: how many leading latent frames are the (echoed) prompt.
        stats: prefill/decode timings.
        seconds: wall time of each stage (load, encode, generate, decode, write).
    """

    output: Path
    tokens: torch.Tensor
    prompt_latent_frames: int
    stats: gen.DecodeStats
    seconds: dict[str, float]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str | torch.device) -> torch.dtype:
    # bf16 is what cosmos-predict1 runs in on the GPU; CPU bf16 matmuls are slow and some tokenizer ops are missing.
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def check_paths(opts: GenerateOptions) -> None:
    """Fail in a second, with one line, on what would otherwise fail after minutes of loading."""
    if not opts.input.is_file():
        raise FileNotFoundError(f"input {opts.input} does not exist (pass an image or a video file with --input)")
    if not opts.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {opts.checkpoint} does not exist (pass the model.pt of "
                                "Cosmos-Predict1-4B or a post-trained export with --checkpoint)")  # fmt: skip
    if not opts.tokenizer.is_dir():
        raise FileNotFoundError(f"tokenizer folder {opts.tokenizer} does not exist (download "
                                "Cosmos-Tokenize1-DV8x16x16-720p there, or pass --tokenizer)")  # fmt: skip
    for target in (opts.output, opts.save_tokens):
        if target is not None and target.exists() and not opts.overwrite:
            raise FileExistsError(f"{target} already exists; pass --overwrite to replace it or choose another path")
    if opts.output.suffix.lower() != ".mp4":
        raise ValueError(f"output {opts.output} must end in .mp4")


def output_resolution(cfg: CosmosARConfig, resolution: tuple[int, int] | None) -> tuple[int, int]:
    """``resolution`` if given (checked to be multiples of 16), else the grid the model was configured with × 16."""
    if resolution is None:
        return cfg.latent_shape[1] * SPATIAL_COMPRESSION, cfg.latent_shape[2] * SPATIAL_COMPRESSION
    latent_shape_for(gen.NUM_OUTPUT_FRAMES, *resolution)  # raises on sizes that are not multiples of 16
    return resolution


def load_input(path: Path, num_input_frames: int, height: int, width: int) -> torch.Tensor:
    """The prompt clip, padded: ``[3, 33, height, width]`` float32 in [-1, 1].

    An image gives one frame; a video its last ``num_input_frames`` frames. The last real frame is repeated up to
    33 frames, which cannot leak into the prompt tokens (the tokenizer is causal).
    """
    if path.suffix.lower() in IMAGE_SUFFIXES:
        clip = video_io.read_image(path, size=(height, width))
    else:
        available = video_io.probe(path).num_frames
        if available < num_input_frames:
            raise video_io.VideoError(
                f"{path} has {available} frame(s) but --num-input-frames {num_input_frames} takes the last "
                f"{num_input_frames}; pass --num-input-frames 1 to start from its last frame"
            )
        clip = video_io.read_video(path, num_frames=num_input_frames, start=-num_input_frames, size=(height, width))
    return video_io.pad_frames(clip, gen.NUM_OUTPUT_FRAMES)


def generate_video(opts: GenerateOptions) -> GenerationResult:
    """Run the whole pipeline (see the module docstring) and return the tokens and timings.

    Raises:
        FileNotFoundError / FileExistsError: a missing input, checkpoint or tokenizer; an existing output.
        ValueError: unusable input (``VideoError``), a checkpoint that does not fit (``CheckpointMismatch``), a bad
            option.
    """
    check_paths(opts)
    device = torch.device(opts.device or default_device())
    dtype = opts.dtype or default_dtype(device)
    # A TorchScript tokenizer runs only in the dtype it was traced in, so the jit backend keeps the files' own.
    tok_dtype = opts.tokenizer_dtype or (None if opts.tokenizer_backend == "jit" else dtype)
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    # The checkpoint is memory-mapped: reading the config and checking shapes costs page cache, not a load.
    cfg, state = gen.read_checkpoint(opts.checkpoint, opts.model)
    height, width = output_resolution(cfg, opts.resolution)
    grid = latent_shape_for(gen.NUM_OUTPUT_FRAMES, height, width)
    cfg = cfg.with_latent_shape(grid)  # the RoPE positions of the 33-frame grid at this resolution
    n_prompt_frames = gen.prompt_latent_frames(opts.num_input_frames)
    clip = load_input(opts.input, opts.num_input_frames, height, width)  # before loading models: fail fast

    def tokenizer():
        return load_tokenizer(opts.tokenizer, opts.tokenizer_backend, device, tok_dtype)

    model = None if opts.offload_ar_model else gen.build_model(cfg, state, device, dtype)
    tok = None if opts.offload_tokenizer else tokenizer()
    seconds["load"] = time.perf_counter() - t

    t = time.perf_counter()
    if tok is None:
        tok = tokenizer()
    ids = tok.encode(clip[None])  # [1, T', H', W']
    if tuple(ids.shape[1:]) != grid:
        raise ValueError(f"the tokenizer in {opts.tokenizer} gives a {list(ids.shape[1:])} grid for 33 frames at "
                         f"{height}x{width}; the model expects {list(grid)}")  # fmt: skip
    if opts.offload_tokenizer:
        del tok
        tok = None
        gen.free_memory(device)
    seconds["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    if model is None:
        model = gen.build_model(cfg, state, device, dtype)
    del state  # from here on only the model references the weights (on the CPU: the file's memory map)
    prompt = flatten_grid(ids[:, :n_prompt_frames]).to(device)
    rng = torch.Generator(device=device).manual_seed(opts.seed)
    seq, stats = gen.generate_tokens(model, prompt, cfg.seq_length, opts.sampling, rng, progress=opts.progress,
                                     step_mode=opts.step_mode)
    tokens = unflatten_grid(seq, grid)
    if opts.offload_ar_model:
        del model
        gen.free_memory(device)
    seconds["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    if tok is None:
        tok = tokenizer()
    video = tok.decode(tokens)[0]  # [3, 33, H, W] float32, about [-1, 1]
    if opts.offload_tokenizer:
        del tok
        gen.free_memory(device)
    seconds["decode"] = time.perf_counter() - t

    t = time.perf_counter()
    if opts.output.exists() and not opts.overwrite:  # it may have appeared while we were generating
        raise FileExistsError(f"{opts.output} already exists; pass --overwrite to replace it")
    tokens = tokens.cpu()
    if opts.save_tokens is not None:
        _save_atomic(tokens, opts.save_tokens)
    video_io.write_video(opts.output, video, fps=OUTPUT_FPS, layout="CTHW")  # clamps to [-1, 1], uint8, atomic
    seconds["write"] = time.perf_counter() - t
    return GenerationResult(opts.output, tokens, n_prompt_frames, stats, seconds)


def _save_atomic(tensor: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(tensor, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
