"""One small interface over the ways of running the DV8x16x16 tokenizer, and the folder loader.

* ``EagerTokenizer``: this package's PyTorch network (``networks.py``) with the weights read out of the released
  ``encoder.jit``/``decoder.jit`` state dicts. Any float dtype, CPU or GPU; can be compiled or modified.
* ``FastTokenizer`` (``fast.py``): the eager network compiled and laid out for speed (torch.compile, channels-last,
  fused Haar transforms, cuDNN autotuning), each a ``FastOptions`` switch.
* ``JitTokenizer``: the released TorchScript files themselves (``torch.jit.load``), for comparison. A traced module
  bakes its dtype casts into the graph, so it runs only in the dtype it was traced in (bf16 for NVIDIA's export,
  which also needs a GPU because CPU PyTorch has no bf16 ``avg_pool3d``).

Both cut long clips into independent causal chunks of ``pixel_chunk_duration`` frames (33 by default, as
cosmos-predict1 does: ``b c (n t) h w -> (b n) c t h w``) and run at most ``max_enc_batch_size`` /
``max_dec_batch_size`` chunks at a time. A clip of 1 + 8k frames shorter than one chunk is encoded whole.

Usage::

    tok = load_tokenizer("checkpoints/Cosmos-Tokenize1-DV8x16x16-720p", device="cuda", dtype=torch.bfloat16)
    ids = tok.encode(video)   # [B, 3, 33, 640, 1024] in [-1, 1] -> [B, 5, 40, 64] int64 in [0, 64,000)
    rec = tok.decode(ids)     # -> [B, 3, 33, 640, 1024] float32, about [-1, 1]
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from nemo_cosmos_ar.tokenizer.fsq import codebook_size
from nemo_cosmos_ar.tokenizer.networks import CausalVideoTokenizer, TokenizerConfig, infer_config

ENCODER_FILE = "encoder.jit"
DECODER_FILE = "decoder.jit"
AUTOENCODER_FILE = "autoencoder.jit"
BACKENDS = ("eager", "jit", "fast")
# What backend="auto" means on a GPU (prepare-data's default): "fast", which on an H200 gives eager bf16's indices on
# 100 % of 8 real-looking clips and eager's decoded frames bit for bit, at 32.1 / 14.7 clips/s encode / decode
# against eager's 21.2 / 7.2 (batch 4; BENCHMARKS.md, issue 15). Its compile (8-30 s per clip shape) is paid once
# per process, which a dataset amortises; `cosmos-ar generate` (one video) keeps "eager" as its default for that
# reason. On CPU "auto" is always "eager" (compiling costs minutes there and gains little).
DEFAULT_GPU_BACKEND = "fast"


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """``backend`` with ``"auto"`` replaced by ``DEFAULT_GPU_BACKEND`` on CUDA and ``"eager"`` elsewhere."""
    if backend != "auto":
        return backend
    return DEFAULT_GPU_BACKEND if torch.device(device).type == "cuda" else "eager"


class VideoTokenizer(Protocol):
    """What the data pipeline and the inference pipeline need from a video tokenizer."""

    codebook_size: int

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]: ...

    def encode(self, video: torch.Tensor) -> torch.Tensor: ...

    def decode(self, indices: torch.Tensor) -> torch.Tensor: ...


def _chunking(length: int, chunk: int | None, unit: str, chunk_desc: str) -> tuple[int, int]:
    """``(number of chunks, chunk length)`` for ``length`` frames (pixel or latent) and a chunk length."""
    if chunk is None or length <= chunk:
        return 1, length
    if length % chunk == 0:
        return length // chunk, chunk
    raise ValueError(
        f"{length} {unit} cannot be cut into chunks of {chunk_desc}: pass a whole number of chunks, one clip of at "
        f"most one chunk, or pixel_chunk_duration=None to encode the clip in one piece"
    )


class _ChunkedTokenizer:
    """Chunking, sub-batching, device and dtype handling shared by both backends."""

    def __init__(
        self,
        config: TokenizerConfig,
        device: torch.device | str,
        dtype: torch.dtype,
        pixel_chunk_duration: int | None,
        max_enc_batch_size: int,
        max_dec_batch_size: int,
    ) -> None:
        if pixel_chunk_duration is not None:
            config.latent_shape(pixel_chunk_duration, config.spatial_compression, config.spatial_compression)
        if max_enc_batch_size < 1 or max_dec_batch_size < 1:
            raise ValueError("max_enc_batch_size and max_dec_batch_size must be >= 1")
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        self.pixel_chunk_duration = pixel_chunk_duration
        self.max_enc_batch_size = max_enc_batch_size
        self.max_dec_batch_size = max_dec_batch_size
        self.codebook_size = codebook_size(config.levels)

    # Backends implement these two on one sub-batch already on self.device.
    def _encode_clips(self, video: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode_clips(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _latent_chunk(self, pixel_chunk: int | None) -> int | None:
        if pixel_chunk is None:
            return None
        side = self.config.spatial_compression
        return self.config.latent_shape(pixel_chunk, side, side)[0]

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of a ``num_frames``×``height``×``width`` clip, chunking included.

        33×640×1024 -> (5, 40, 64); 33×384×640 -> (5, 24, 40); 66×640×1024 -> (10, 40, 64).
        """
        n, t = _chunking(num_frames, self.pixel_chunk_duration, "frames", f"{self.pixel_chunk_duration} frames")
        lt, lh, lw = self.config.latent_shape(t, height, width)
        return n * lt, lh, lw

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Tokenize a batch of clips.

        Args:
            video: ``[B, 3, T, H, W]`` float in [-1, 1], any device. T is 1 + 8k frames (at most one chunk) or a
                multiple of ``pixel_chunk_duration``; H and W are multiples of 16.

        Returns:
            ``[B, T', H', W']`` int64 token indices in ``[0, codebook_size)`` on ``self.device``; chunks are
            concatenated along T'.
        """
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError(f"expected video [B, {self.config.in_channels}, T, H, W], got {tuple(video.shape)}")
        if not video.is_floating_point():
            raise ValueError(f"expected a float video in [-1, 1], got dtype {video.dtype}")
        b, c, t, h, w = video.shape
        self.latent_shape(t, h, w)  # validates T, H, W with a clear message
        n, t_chunk = _chunking(t, self.pixel_chunk_duration, "frames", f"{self.pixel_chunk_duration} frames")
        clips = video.reshape(b, c, n, t_chunk, h, w).transpose(1, 2).reshape(b * n, c, t_chunk, h, w)
        out = [
            self._encode_clips(clips[i : i + self.max_enc_batch_size].to(self.device, self.dtype)).long()
            for i in range(0, b * n, self.max_enc_batch_size)
        ]
        indices = torch.cat(out, dim=0)
        return indices.reshape(b, n * indices.shape[1], *indices.shape[2:])

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Turn token grids back into pixels.

        Args:
            indices: ``[B, T', H', W']`` integer indices in ``[0, codebook_size)``, any device; T' is at most one
                latent chunk (5 for 33-frame chunks) or a multiple of it.

        Returns:
            ``[B, 3, T, H, W]`` float32 on ``self.device``, T = chunks × (1 + 8(T'_chunk - 1)), H = 16H', W = 16W'.
            Values are about [-1, 1] but not clamped (as in cosmos-predict1); clamp before converting to uint8.
        """
        if indices.ndim != 4 or indices.is_floating_point():
            raise ValueError(f"expected integer indices [B, T', H', W'], got {tuple(indices.shape)} {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(f"indices must lie in [0, {self.codebook_size}); special tokens must be removed first")
        b, t, h, w = indices.shape
        lat_chunk = self._latent_chunk(self.pixel_chunk_duration)
        n, t_chunk = _chunking(t, lat_chunk, "latent frames", f"{lat_chunk} latent frames")
        clips = indices.reshape(b * n, t_chunk, h, w)
        out = [
            self._decode_clips(clips[i : i + self.max_dec_batch_size].to(self.device)).float()
            for i in range(0, b * n, self.max_dec_batch_size)
        ]
        video = torch.cat(out, dim=0)
        _, c, tp, hp, wp = video.shape
        return video.reshape(b, n, c, tp, hp, wp).transpose(1, 2).reshape(b, c, n * tp, hp, wp)


class EagerTokenizer(_ChunkedTokenizer):
    """The eager PyTorch network behind the ``VideoTokenizer`` interface.

    Args:
        network: a ``CausalVideoTokenizer`` with loaded weights; it is moved to ``device``/``dtype`` and frozen.
        device: where encoding and decoding run.
        dtype: compute dtype (``torch.float32`` or ``torch.bfloat16``; bf16 is what cosmos-predict1 uses).
        pixel_chunk_duration: frames per independently encoded chunk (1 + 8k), or None for no chunking.
        max_enc_batch_size: most chunks encoded at once (limits activation memory).
        max_dec_batch_size: most chunks decoded at once.
    """

    def __init__(
        self,
        network: CausalVideoTokenizer,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        pixel_chunk_duration: int | None = 33,
        max_enc_batch_size: int = 8,
        max_dec_batch_size: int = 4,
    ) -> None:
        super().__init__(network.config, device, dtype, pixel_chunk_duration, max_enc_batch_size, max_dec_batch_size)
        self.network = network.to(device=self.device, dtype=dtype).eval().requires_grad_(False)

    def _encode_clips(self, video: torch.Tensor) -> torch.Tensor:
        return self.network.encode(video)[0]

    def _decode_clips(self, indices: torch.Tensor) -> torch.Tensor:
        return self.network.decode(indices)


class JitTokenizer(_ChunkedTokenizer):
    """The released TorchScript ``encoder.jit``/``decoder.jit`` behind the ``VideoTokenizer`` interface.

    Args:
        encoder: loaded ``encoder.jit`` (pixels -> (indices int32, codes, dummy)).
        decoder: loaded ``decoder.jit`` (indices -> pixels).
        config: sizes, for shape checks (``infer_config`` of the two state dicts).
        device: where the modules live.
        pixel_chunk_duration, max_enc_batch_size, max_dec_batch_size: as for ``EagerTokenizer``.

    The dtype is the one the files were traced in (see the module docstring).
    """

    def __init__(
        self,
        encoder: torch.jit.ScriptModule,
        decoder: torch.jit.ScriptModule,
        config: TokenizerConfig,
        device: torch.device | str = "cpu",
        pixel_chunk_duration: int | None = 33,
        max_enc_batch_size: int = 8,
        max_dec_batch_size: int = 4,
    ) -> None:
        dtype = traced_dtype(encoder)
        super().__init__(config, device, dtype, pixel_chunk_duration, max_enc_batch_size, max_dec_batch_size)
        # NVIDIA disables the tensor-expression fuser so that repeated calls give identical outputs
        # (pytorch/pytorch#74534). This is a process-wide TorchScript setting.
        torch._C._jit_set_texpr_fuser_enabled(False)
        self.encoder = encoder.to(self.device).eval()
        self.decoder = decoder.to(self.device).eval()

    def _encode_clips(self, video: torch.Tensor) -> torch.Tensor:
        return self.encoder(video)[0]

    def _decode_clips(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decoder(indices)


def traced_dtype(module: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a module's parameters (the dtype a traced TorchScript module must run in)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    raise ValueError("module has no floating-point parameters")


def _load_jit(path: Path, device: torch.device | str) -> torch.jit.ScriptModule:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a tokenizer folder needs {ENCODER_FILE} and {DECODER_FILE} (the layout of "
            "Cosmos-Tokenize1-DV8x16x16-720p); download it or build a test one with "
            "nemo_cosmos_ar.tokenizer.fixtures.write_random_tokenizer()"
        )
    try:
        return torch.jit.load(str(path), map_location=device)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a readable TorchScript file ({err.__class__.__name__}: {err})") from err


def load_tokenizer(
    folder: str | Path,
    backend: str = "eager",
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    pixel_chunk_duration: int | None = 33,
    max_enc_batch_size: int = 8,
    max_dec_batch_size: int = 4,
    fast_options=None,
) -> EagerTokenizer | JitTokenizer:
    """Load a tokenizer folder laid out like Cosmos-Tokenize1-DV8x16x16-720p (``encoder.jit``, ``decoder.jit``).

    The network sizes are read off the state dicts, so the released folder and a folder written by
    ``fixtures.write_random_tokenizer`` load through the same code.

    Args:
        folder: the tokenizer folder.
        backend: ``"eager"`` (this package's network with the files' weights), ``"fast"`` (the same network compiled,
            see ``fast.py``), ``"jit"`` (the TorchScript files) or ``"auto"`` (``resolve_backend``).
        device: where to run, e.g. ``"cuda"`` or ``"cpu"``.
        dtype: compute dtype; None means the dtype the weights are stored in. The ``"jit"`` backend accepts only
            that dtype.
        pixel_chunk_duration: frames per independently encoded chunk (1 + 8k; 33 as in cosmos-predict1), or None.
        max_enc_batch_size: most chunks encoded at once.
        max_dec_batch_size: most chunks decoded at once.
        fast_options: ``fast.FastOptions`` of the ``"fast"`` backend (None: its defaults).

    Returns:
        A tokenizer with ``encode``, ``decode``, ``latent_shape`` and ``codebook_size``.

    Raises:
        FileNotFoundError: the folder or one of the two files is missing.
        ValueError: unknown backend, unreadable file, files that are not a discrete video tokenizer, or a dtype the
            TorchScript files cannot run in.
    """
    backend = resolve_backend(backend, device)
    if backend not in BACKENDS:
        raise ValueError(f"unknown tokenizer backend {backend!r}; choose one of {BACKENDS} or 'auto'")
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"tokenizer folder {root} does not exist; download Cosmos-Tokenize1-DV8x16x16-720p there or build a "
            "test one with nemo_cosmos_ar.tokenizer.fixtures.write_random_tokenizer()"
        )
    # The state dicts are read on CPU, so the eager path never holds two copies of the weights on the GPU.
    map_location = device if backend == "jit" else "cpu"
    encoder = _load_jit(root / ENCODER_FILE, map_location)
    decoder = _load_jit(root / DECODER_FILE, map_location)
    enc_sd, dec_sd = encoder.state_dict(), decoder.state_dict()
    config = infer_config(enc_sd, dec_sd)
    stored = traced_dtype(encoder)
    chunking = dict(
        pixel_chunk_duration=pixel_chunk_duration,
        max_enc_batch_size=max_enc_batch_size,
        max_dec_batch_size=max_dec_batch_size,
    )
    if backend == "jit":
        if dtype is not None and dtype != stored:
            raise ValueError(
                f"{root / ENCODER_FILE} was traced in {stored}; a TorchScript tokenizer runs only in its traced "
                f"dtype. Pass dtype={stored} (or None), or use backend='eager' for {dtype}"
            )
        return JitTokenizer(encoder, decoder, config, device, **chunking)
    network = CausalVideoTokenizer(config)
    try:
        network.load_released_state_dicts(enc_sd, dec_sd)
    except RuntimeError as err:
        raise ValueError(f"the weights in {root} do not fit the causal video tokenizer network: {err}") from err
    del encoder, decoder
    if backend == "fast":
        from nemo_cosmos_ar.tokenizer.fast import FastTokenizer

        return FastTokenizer(network, device, dtype if dtype is not None else stored, **chunking, options=fast_options)
    return EagerTokenizer(network, device, dtype if dtype is not None else stored, **chunking)
