"""DV8x16x16 token grid in, video out: the diffusion-decoder stage of cosmos-predict1's base pipeline.

``DiffusionDecoder.decode_tokens`` does what ``diffusion_decoder_process_tokens``
(``autoregressive/diffusion_decoder/inference.py``) does for one video:

1. cut the grid ``[T, h, w]`` (T = 5 for 33 frames) into chunks of 8 latent frames overlapping by 2 (one chunk,
   reflect-padded 0 1 2 3 4 3 2 1, for every 33-frame video);
2. per chunk, draw ``[1, 16, 8, 2h, 2w]`` noise from a CPU generator seeded with ``seed`` and run 15 EDM Euler
   steps of the DiT, guidance 1.8: conditional = (generic-prompt T5 embedding, tokens), unconditional = (zero
   embedding, token id 0 everywhere): what NVIDIA's conditioner gives with dropout 1 on the text and on the
   token condition (both have ``dropout_rate=0.2`` in training);
3. decode each chunk's latent with the CV8x8x8 decoder (``latent / 0.5 * std + mean``), clamp to [-1, 1], join the
   chunks by a linear cross-fade and keep ``1 + 8 (T - 1)`` frames. The decoder is causal in time, so of the last
   chunk only the latent frames whose frames are kept are decoded (5 of 8 for 33 frames): NVIDIA decodes all 8 and
   drops the rest; the kept frames agree up to the convolutions' rounding (BENCHMARKS.md, issue 13).

NVIDIA also decodes every chunk's tokens with the DV8x16x16 decoder and discards the result (``model.py``
``_add_latent_conditions_to_data_batch``); that work is skipped here. Its pipeline runs the DV decoder first only to
learn the frame count and size, which follow from the grid, so a caller can skip that decode too.

Offloading keeps cosmos-predict1's meaning (delete after use, reload from disk when next needed): with
``offload_network`` the DiT is loaded right before sampling and freed before the CV8x8x8 decode; with
``offload_tokenizer`` the CV8x8x8 decoder is loaded right before decoding and freed after. Without them both are
loaded by the constructor and stay resident across calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nemo_cosmos_ar.diffusion_decoder import fp8
from nemo_cosmos_ar.diffusion_decoder import sampler as smp
from nemo_cosmos_ar.diffusion_decoder.attention import fa4_import_error
from nemo_cosmos_ar.diffusion_decoder.attention import preload as preload_fa4
from nemo_cosmos_ar.diffusion_decoder.attention import resolve as resolve_attention
from nemo_cosmos_ar.diffusion_decoder.checkpoint import MODEL_FILE, load_dit, load_generic_prompt
from nemo_cosmos_ar.diffusion_decoder.config import DiTConfig, SamplerConfig, get_dit_config
from nemo_cosmos_ar.diffusion_decoder.cv8x8x8 import DECODER_FILE, CVTokenizerDecoder, load_cv_decoder
from nemo_cosmos_ar.diffusion_decoder.epilogues import EPILOGUES
from nemo_cosmos_ar.diffusion_decoder.fp8 import GEMMS
from nemo_cosmos_ar.diffusion_decoder.fused import KERNELS
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT
from nemo_cosmos_ar.diffusion_decoder.parallel import GuidanceSplit
from nemo_cosmos_ar.runtime import Background, free_memory

DV_SPATIAL = 16  # DV8x16x16 pixels per token, per side
CV_SPATIAL = 8  # CV8x8x8 pixels per latent cell, per side
TEMPORAL = 8  # frames per latent frame of both tokenizers (after the first)


@dataclass
class DecodeStats:
    """Timings of one ``decode_tokens`` call (seconds; CUDA-synchronised) and its peak GPU memory.

    ``load_*_s`` count only loads made during the call (offloading); the constructor's are in ``startup_s``.
    """

    load_network_s: float = 0.0
    load_tokenizer_s: float = 0.0
    wait_load_s: float = 0.0  # waiting for the constructor's background load (first call only)
    step_s: list[float] = field(default_factory=list)
    sample_s: float = 0.0
    tokenizer_decode_s: float = 0.0
    total_s: float = 0.0
    chunks: int = 0
    peak_memory_gib: float | None = None
    attention: str = ""  # the DiT's attention backend


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class DiffusionDecoder:
    """The 7B diffusion decoder and the CV8x8x8 decoder behind one call.

    Args:
        checkpoint_dir: folder with ``model.pt`` and ``aux_vars.pt``
            (Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p layout).
        tokenizer_dir: folder with ``decoder.jit`` and ``mean_std.pt`` (Cosmos-Tokenize1-CV8x8x8-720p layout).
        device: where to run; None = CUDA when available.
        dtype: DiT dtype; None = bf16 on CUDA (as cosmos-predict1), fp32 on CPU.
        sampler: schedule, guidance, chunking; None = cosmos-predict1's defaults.
        config: DiT sizes (a ``DiTConfig`` or preset name); None = from the checkpoint's shapes.
        offload_network: load the DiT for each call and free it before the CV8x8x8 decode.
        offload_tokenizer: load the CV8x8x8 decoder for each call and free it after.
        tokenizer_backend: ``"jit"`` (the TorchScript file, NVIDIA's path) or ``"eager"``.
        tokenizer_dtype: eager CV8x8x8 dtype; None = the file's (the jit backend always uses the file's).
        attention: ``"auto"`` (FlashAttention-4 where it runs, else SDPA), ``"sdpa"`` (torch
            scaled_dot_product_attention), ``"fa4"`` or ``"te"`` (TransformerEngine, if installed); ``attention.py``.
        compile_blocks: ``torch.compile`` each DiT block (GPU speed; the first call pays the compile).
        kernels: the DiT's norms, RoPE and gated residuals as Triton kernels on the GPU (``"auto"``, ``fused.py``)
            or as the plain torch ops (``"eager"``).
        gemm: ``"bf16"`` (the model dtype) or ``"fp8"``: the DiT blocks' token-stream projections as e4m3 GEMMs with
            the activation quantization fused into the kernels that produce them (``fp8.py``; faster on a GPU with
            FP8 tensor cores, and the video changes slightly).
        epilogues: ``"auto"``: with bf16 GEMMs on a GPU, the MLP's GELU and the sub-blocks' gated residuals are
            computed by the cuBLAS products that produce their inputs (``epilogues.py``; bf16-rounding-level
            differences); ``"off"``: separate passes.
        split: this rank's part of a guidance split (``parallel.py``): each rank runs one of the two passes of every
            step (with four or more ranks, its slice of that pass's tokens); only rank 0 loads the CV8x8x8 decoder,
            and the others' ``decode_tokens`` returns None. Every rank of the split must call ``decode_tokens``
            with the same tokens and seed. None: both passes here.
        background: without ``offload_network``: check the file's keys and shapes now (memory-mapped; a bad file
            still fails here), then load the DiT and the CV8x8x8 decoder in a thread (on CUDA on a side stream)
            while the caller goes on (generate's AR decode), and wait for them at the first ``decode_tokens``.
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        tokenizer_dir: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        sampler: SamplerConfig | None = None,
        config: DiTConfig | str | None = None,
        offload_network: bool = False,
        offload_tokenizer: bool = False,
        tokenizer_backend: str = "jit",
        tokenizer_dtype: torch.dtype | None = None,
        attention: str = "auto",
        compile_blocks: bool = False,
        kernels: str = "auto",
        gemm: str = "bf16",
        epilogues: str = "auto",
        split: GuidanceSplit | None = None,
        background: bool = False,
    ) -> None:
        self.checkpoint_dir, self.tokenizer_dir = Path(checkpoint_dir), Path(tokenizer_dir)
        for folder, name in ((self.checkpoint_dir, MODEL_FILE), (self.tokenizer_dir, DECODER_FILE)):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder / name} not found: the diffusion decoder needs "
                    "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p (model.pt, aux_vars.pt) "
                    "and Cosmos-Tokenize1-CV8x8x8-720p (decoder.jit, mean_std.pt)"
                )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._fa4_optional = attention == "auto"  # an FA4 that fails to import falls back to SDPA (attention_backend)
        attention = resolve_attention(attention, self.device)
        if attention == "fa4":
            preload_fa4()  # its 5-16 s import on a thread, while the caller goes on; the first forward waits for it
        if gemm == "fp8":
            fp8.check_device(self.device)
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.sampler = sampler or SamplerConfig()
        self.config_arg = config
        self.offload_network, self.offload_tokenizer = offload_network, offload_tokenizer
        self.tokenizer_backend, self.tokenizer_dtype = tokenizer_backend, tokenizer_dtype
        if kernels not in KERNELS:
            raise ValueError(f"unknown DiT kernels {kernels!r}; choose one of {KERNELS}")
        if gemm not in GEMMS:
            raise ValueError(f"unknown DiT GEMM precision {gemm!r}; choose one of {GEMMS}")
        if epilogues not in EPILOGUES:
            raise ValueError(f"unknown DiT epilogues {epilogues!r}; choose one of {EPILOGUES}")
        self.attention, self.compile_blocks, self.kernels, self.gemm = attention, compile_blocks, kernels, gemm
        self.epilogues = epilogues
        self.split = split
        self.makes_frames = split is None or split.makes_frames  # the other ranks sample only
        self.stats = DecodeStats()
        self.startup_s = {"network": 0.0, "tokenizer": 0.0}
        self.network: DiffusionDecoderDiT | None = None
        self.tokenizer: CVTokenizerDecoder | None = None
        self._loader: Background | None = None  # the background load, until waited for
        background = background and not offload_network
        if not offload_network and not background:
            self.network, self.startup_s["network"] = self._load_network()
        self.dit_config = self.network.config if self.network is not None else self._peek_config(check=background)
        self.context = load_generic_prompt(self.checkpoint_dir, self.dit_config.context_dim)
        load_tok = not offload_tokenizer and self.makes_frames
        if background:
            self._loader = Background(lambda: self._load_both(load_tok), self.device, "cosmos-ar-dd-load")
        elif load_tok:
            self.tokenizer, self.startup_s["tokenizer"] = self._load_tokenizer()

    @torch.no_grad()
    def warm_kernels(self, grid_hw: tuple[int, int]) -> float:
        """Run a one-block copy of the DiT (random weights, built here) once at a chunk's shapes for token grids of
        ``grid_hw`` (``(40, 64)`` at 640x1024); returns the seconds taken.

        Why: on the H200, when the AR model generates in a process before the DiT's first forward, every later
        DiT step runs ~25% slower (2.46 against 1.97 s, bench/bench_dd_after_ar.py) for the rest of the process;
        a DiT forward before the generation keeps the fast kernels. The blocks are all alike, so one block at the
        real shapes makes the same first choices at 1/28 of a forward. generate calls it before the AR decode.
        """
        cfg = dataclasses.replace(self.dit_config, num_blocks=1)
        t = time.perf_counter()
        with torch.device(self.device):
            net = DiffusionDecoderDiT(cfg)
        net = net.to(self.dtype).eval().requires_grad_(False)
        net.set_attention_backend(self.attention_backend())
        net.set_kernels(self.kernels)
        net.set_gemm(self.gemm)
        net.set_epilogues(self.epilogues)
        cp = self.split.cp if self.split is not None else None
        net.set_context_parallel(cp.stand_in() if cp is not None else None)  # this rank's shapes, no collectives
        b = 1 if self.split is not None or not self.sampler.batch_guidance else 2
        h, w = grid_hw
        scale = DV_SPATIAL // CV_SPATIAL
        frames = self.sampler.chunk_latent_frames(TEMPORAL)
        x = torch.zeros(b, cfg.latent_channels, frames, h * scale, w * scale, device=self.device, dtype=self.dtype)
        ctx = self.context.to(self.device, self.dtype).expand(b, -1, -1)
        tok = torch.zeros(b, frames, h, w, dtype=torch.long, device=self.device)
        net(x, torch.zeros((), dtype=self.dtype), ctx, tok, self.sampler.fps, context_rows=1 if b == 2 else None)
        _sync(self.device)
        del net
        return time.perf_counter() - t

    def attention_backend(self) -> str:
        """The DiT's attention backend, checked before a forward: chosen by ``"auto"``, a FlashAttention-4 that
        failed to import becomes SDPA with a warning (waits for ``preload``'s import)."""
        if self.attention == "fa4" and self._fa4_optional:
            err = fa4_import_error()
            if err is not None:
                warnings.warn(
                    f"FlashAttention-4 is installed but failed to import ({type(err).__name__}: {err}); the "
                    "diffusion decoder uses torch SDPA (pass --diffusion-decoder-attention sdpa to skip it)",
                    stacklevel=2,
                )
                self.attention = "sdpa"
        return self.attention

    def _load_both(self, load_tok: bool) -> tuple:
        """``background``'s loads (on its thread): ``(network, seconds, tokenizer or None, seconds)``."""
        net, took = self._load_network(sync=False)
        tok, took_tok = self._load_tokenizer(sync=False) if load_tok else (None, 0.0)
        return net, took, tok, took_tok

    def _wait_for_loads(self) -> None:
        if self._loader is None:
            return
        loader, self._loader = self._loader, None
        t = time.perf_counter()
        try:
            net, took, tok, took_tok = loader.result()  # its error is raised here, once
        finally:
            self.stats.wait_load_s = time.perf_counter() - t
        self.network, self.tokenizer = net, tok
        self.startup_s.update(network=took, tokenizer=took_tok)

    def _peek_config(self, check: bool = False) -> DiTConfig:
        """The DiT's config without loading it; ``check``: also check every key's shape and dtype."""
        given = self.config_arg
        if given is not None and not check:
            return given if isinstance(given, DiTConfig) else get_dit_config(given)
        from nemo_cosmos_ar.diffusion_decoder.checkpoint import check_state_dict, detect_preset, read_state_dict

        path = self.checkpoint_dir / MODEL_FILE
        sd = read_state_dict(path)  # memory-mapped: reads the header and shapes only
        preset = "" if isinstance(given, DiTConfig) else given or detect_preset(sd, path)
        cfg = given if isinstance(given, DiTConfig) else get_dit_config(preset)
        if check:
            check_state_dict(sd, cfg, path, preset)
        return cfg

    def _load_network(self, sync: bool = True) -> tuple[DiffusionDecoderDiT, float]:
        t = time.perf_counter()
        net = load_dit(self.checkpoint_dir / MODEL_FILE, self.config_arg, self.device, self.dtype)
        net.set_attention_backend(self.attention)
        net.set_kernels(self.kernels)
        net.set_gemm(self.gemm)
        net.set_epilogues(self.epilogues)
        net.set_context_parallel(self.split.cp if self.split is not None else None)
        if self.compile_blocks:
            for block in net.blocks.values():
                block.compile()
        if sync:
            _sync(self.device)
        return net, time.perf_counter() - t

    def _load_tokenizer(self, sync: bool = True) -> tuple[CVTokenizerDecoder, float]:
        t = time.perf_counter()
        chunk = self.sampler.chunk_latent_frames()
        tok = load_cv_decoder(self.tokenizer_dir, self.tokenizer_backend, self.device, self.tokenizer_dtype, chunk)
        if sync:
            _sync(self.device)
        return tok, time.perf_counter() - t

    def _check_tokens(self, tokens: torch.Tensor, vocab: int) -> torch.Tensor:
        if tokens.ndim == 3:
            tokens = tokens[None]
        if tokens.ndim != 4 or tokens.is_floating_point():
            raise ValueError(f"expected an integer token grid [B, T, h, w], got {tuple(tokens.shape)} {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            raise ValueError(f"token ids must lie in [0, {vocab}) (DV8x16x16 codes; remove special tokens first)")
        return tokens.long()

    def _sample_chunk(
        self, net: DiffusionDecoderDiT, tokens: torch.Tensor, context: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        cfg, sc = net.config, self.sampler
        b, t, h, w = tokens.shape
        scale = DV_SPATIAL // CV_SPATIAL  # CV8x8x8 latent cells per DV8x16x16 token, per side
        noise = torch.randn(b, cfg.latent_channels, t, h * scale, w * scale, generator=gen).to(self.device)
        tok = tokens.to(self.device)
        ctx = context.to(self.device, self.dtype).expand(b, -1, -1)
        tok_u, ctx_u = torch.zeros_like(tok), torch.zeros_like(ctx)

        def denoise_pair(x_in: torch.Tensor, c_noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # context_rows: the unconditional pass's all-zero context makes its cross-attention exactly zero, so
            # the network skips it (network.SubBlock.forward)
            if self.split is not None:  # one pass here, the other on the partner rank
                mine = (ctx, tok, None) if self.split.role == 0 else (ctx_u, tok_u, 0)
                return self.split.exchange(net(x_in, c_noise, *mine[:2], sc.fps, context_rows=mine[2]))
            if sc.batch_guidance:
                xx, cc, tt = torch.cat([x_in, x_in]), torch.cat([ctx, ctx_u]), torch.cat([tok, tok_u])
                out = net(xx, c_noise, cc, tt, sc.fps, context_rows=b)
                return out[:b], out[b:]
            return net(x_in, c_noise, ctx, tok, sc.fps), net(x_in, c_noise, ctx_u, tok_u, sc.fps, context_rows=0)

        last = [time.perf_counter()]

        def on_step(_: int) -> None:
            _sync(self.device)
            now = time.perf_counter()
            self.stats.step_s.append(now - last[0])
            last[0] = now

        return smp.edm_sample(denoise_pair, noise, sc, self.dtype, on_step)

    @torch.no_grad()
    def decode_tokens(
        self,
        tokens: torch.Tensor,
        *,
        seed: int = 0,
        num_frames: int | None = None,
        context: torch.Tensor | None = None,
        on_device: bool = False,
    ) -> torch.Tensor | None:
        """Decode a DV8x16x16 token grid into frames.

        Args:
            tokens: ``[B, T, h, w]`` or ``[T, h, w]`` int ids in [0, codebook size), any device.
            seed: seed of the noise (a CPU generator, so a seed gives the same noise on every device).
            num_frames: frames to keep; None = ``1 + 8 (T - 1)`` (33 for a 5-frame grid).
            context: ``[1, M, 1024]`` T5 prompt embedding (Video2World); None = the generic prompt of
                ``aux_vars.pt``, as cosmos-predict1's base pipeline.
            on_device: return the frames on the decoder's device instead of the CPU (generate converts them to
                uint8 there, so a quarter of the bytes and only the kept frames cross to the host).

        Returns:
            ``[B, 3, num_frames, 16h, 16w]`` float32 on the CPU (``on_device``: the decoder's device), in [-1, 1]
            (what ``video_io.write_video`` takes); None on role 1 of a guidance split.
        """
        tokens = self._check_tokens(tokens, self.dit_config.token_vocab_size)
        sc, tc = self.sampler, TEMPORAL
        chunk = sc.chunk_latent_frames(tc)
        full = 1 + tc * (tokens.shape[1] - 1)
        keep = num_frames or full
        if not 0 < keep <= full:
            raise ValueError(f"num_frames must be in [1, {full}] for a {tokens.shape[1]}-frame grid, got {keep}")
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        self.stats = DecodeStats()
        net, error = None, None
        try:
            self._wait_for_loads()
            net = self.network
            if net is None:
                net, self.stats.load_network_s = self._load_network()
            net.set_attention_backend(self.attention_backend())
        except Exception as err:  # noqa: BLE001 - the partner rank must hear of it before the first exchange
            error = err
        if self.split is not None:
            self.split.agree(error, "loading the diffusion decoder")
        elif error is not None:
            raise error
        self.stats.attention = self.attention
        ctx = self.context if context is None else context.float().reshape(1, -1, net.config.context_dim)
        gen = torch.Generator().manual_seed(seed)
        latents: list[list[torch.Tensor]] = []
        t = time.perf_counter()
        for sample in tokens.split(1):
            parts = smp.split_tokens(sample, chunk, sc.overlap)
            latents.append([self._sample_chunk(net, part, ctx, gen) for part in parts])
        _sync(self.device)
        self.stats.sample_s = time.perf_counter() - t
        self.stats.chunks = sum(len(p) for p in latents)
        if self.offload_network:
            del net
            free_memory(self.device)
        if not self.makes_frames:
            self.stats.total_s = time.perf_counter() - start
            return None
        tok = self.tokenizer
        if tok is None:
            tok, self.stats.load_tokenizer_s = self._load_tokenizer()
        t = time.perf_counter()
        videos = []
        blend = smp.blend_overlap(sc, tc)
        for parts in latents:
            # only the last chunk's latent frames whose frames are kept (5 of 8 for 33 frames; NVIDIA decodes all 8)
            last = smp.last_chunk_latent_frames(len(parts), keep, chunk, tc, blend)
            parts = parts[:-1] + [parts[-1][:, :, :last]]
            decoded = (tok.decode(lat, sc.sigma_data).clamp(-1, 1) for lat in parts)  # one chunk at a time
            pix = [f if on_device else f.cpu() for f in decoded]
            videos.append(smp.blend_chunks(pix, blend)[:, :, :keep])
        _sync(self.device)
        self.stats.tokenizer_decode_s = time.perf_counter() - t
        if self.offload_tokenizer:
            del tok
            free_memory(self.device)
        self.stats.total_s = time.perf_counter() - start
        if self.device.type == "cuda":
            self.stats.peak_memory_gib = torch.cuda.max_memory_allocated(self.device) / 2**30
        return torch.cat(videos)

    def close(self) -> None:
        """Free the resident modules (after a background load has finished)."""
        if self._loader is not None:
            with contextlib.suppress(Exception):  # a failed load leaves nothing to free
                self._loader.result()
            self._loader = None
        self.network = self.tokenizer = None
        free_memory(self.device)


def decode_tokens(
    tokens: torch.Tensor,
    checkpoint_dir: str | Path,
    tokenizer_dir: str | Path,
    *,
    seed: int = 0,
    **kwargs,
) -> torch.Tensor:
    """One-call form: build a ``DiffusionDecoder(checkpoint_dir, tokenizer_dir, **kwargs)``, decode, free it."""
    dd = DiffusionDecoder(checkpoint_dir, tokenizer_dir, **kwargs)
    try:
        return dd.decode_tokens(tokens, seed=seed)
    finally:
        dd.close()
