"""Image or 9-frame video in, 33-frame video out: the steps of ``cosmos-ar generate``.

The order of cosmos-predict1's base pipeline
(``cosmos_predict1/autoregressive/inference/world_generation_pipeline.py``):

1. read the input: an image (one frame) or the **last** ``num_input_frames`` (9) frames of a video, resize so the
   frame covers the model resolution keeping its aspect ratio, centre-crop, scale to [-1, 1], pad to 33 frames by
   repeating the last frame;
2. tokenize the 33 frames with the DV8x16x16 encoder -> grid ``[5, H/16, W/16]``; the prompt is its first latent
   frame (image) or first two (9 frames), which the causal tokenizer computes from the real frames only (so the
   eager backend encodes just the real frames; the TorchScript files get the 33);
3. generate the rest of the grid with the AR model (KV cache, temperature + top-p, seeded) on the Megatron-Core
   model at the run's tensor-parallel size (``engine.py``), or on the plain-PyTorch reference (``engine="reference"``);
4. decode the whole grid (prompt re-decoded too): with ``diffusion_decoder_dir``, by the 7B diffusion decoder
   (``nemo_cosmos_ar.diffusion_decoder``; DV8x16x16 tokens -> CV8x8x8 latents -> frames, its noise seeded with the
   job's seed, one video per call), else by the DV8x16x16 decoder (cosmos-predict1's ``--disable_diffusion_decoder``);
5. with ``guardrail_dir``: the video guardrails (``nemo_cosmos_ar.guardrails``): the content safety filter, and an
   unsafe video is not written (``UnsafeVideo``), then the face blur;
6. write 33 frames, uint8 RGB, 25 fps, MP4, atomically.

Under torchrun (TP = the number of processes) rank 0 reads and tokenizes the inputs and broadcasts the prompts,
every rank runs its shard of the model, rank 0 decodes, runs the guardrails and writes; the other ranks never load
the tokenizer or the guardrails. The diffusion decoder's DiT runs on ranks 0 and 1, each one of the two passes of the
guidance (``diffusion_decoder/parallel.py``; on four or more ranks every rank, each pass cut by context parallelism;
``dd_parallel="guidance"``: ranks 0 and 1 only; ``"off"``: rank 0 alone); rank 0 makes the frames.
Offloading (cosmos-predict1's ``--offload_*`` flags) deletes a module after use and reloads it from disk when it is
next needed; it never moves modules to the CPU. Without it the model, the tokenizer, the diffusion decoder and the
guardrails are loaded up front and stay resident; with the diffusion decoder on, the DV8x16x16 tokenizer is only
needed to encode, so it is freed once the prompts are encoded. Steps 1 and 2 overlap the loads: the input is read on
a thread from the start, and the prompt is encoded on a thread while the AR model loads (the tokenizer loads first).

The options of a run and the checks made before anything loads are in ``options.py``.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.data.token_layout import flatten_grid, unflatten_grid
from nemo_cosmos_ar.inference import checkpoints as ck
from nemo_cosmos_ar.inference import checks, writer
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.options import IMAGE_SUFFIXES, GenerateOptions, Job, check_common, check_job_paths, world
from nemo_cosmos_ar.inference.ranks import broadcast, check_ranks_agree, share
from nemo_cosmos_ar.model.config import latent_shape_for
from nemo_cosmos_ar.runtime import free_memory
from nemo_cosmos_ar.tokenizer import grid
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

OUTPUT_FPS = 25.0  # cosmos-predict1 writes its outputs at 25 fps (imageio.mimsave(..., fps=25))


class DiffusionDecoderError(ValueError):
    """The diffusion decoder failed on its weights (found unusable when loaded at first use, with offloading): a
    problem of the run, not of one video, so a batch stops."""


class UnsafeVideo(ValueError):
    """The content safety filter judged a generated video unsafe: it was not written (nor its tokens)."""

    def __init__(self, output: Path, verdict) -> None:
        super().__init__(f"{output}: {verdict.message}")
        self.output, self.verdict = output, verdict


@dataclass
class GenerationResult:
    """What ``generate_video`` produced.

    Attributes:
        output: the MP4 written.
        tokens: ``[1, T', H', W']`` int64 on the CPU, prompt latent frame(s) first.
        prompt_latent_frames: how many leading latent frames are the (echoed) prompt.
        stats: prefill/decode timings.
        seconds: wall time of each stage (load, encode, generate, decode, guardrail, write); ``decode`` is the DV
            decode, or the diffusion decoder's whole call when it is on.
        diffusion: the diffusion decoder's timings (``diffusion_decoder.pipeline.DecodeStats``), None when it is off.
        load_parts: what ``seconds["load"]`` was spent on (setup, AR model, tokenizer, diffusion decoder, guardrails).
        encode_beside_s: the prompt's encode on a thread beside the AR model load (``seconds["encode"]`` is then only
            the wait for it after the load).
    """

    output: Path
    tokens: torch.Tensor
    prompt_latent_frames: int
    stats: gen.DecodeStats
    seconds: dict[str, float]
    diffusion: object | None = None
    load_parts: dict[str, float] = field(default_factory=dict)
    encode_beside_s: float = 0.0


def default_dtype(device: str | torch.device) -> torch.dtype:
    # bf16 is what cosmos-predict1 runs in on the GPU; CPU bf16 matmuls are slow and some tokenizer ops are missing.
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def output_resolution(cfg, resolution: tuple[int, int] | None) -> tuple[int, int]:
    """``resolution`` if given (checked to be multiples of 16), else the grid the model was configured with × 16."""
    if resolution is None:
        return grid.clip_size(cfg.latent_shape)[1:]
    latent_shape_for(gen.NUM_OUTPUT_FRAMES, *resolution)  # raises on sizes that are not multiples of 16
    return resolution


def load_input(path: Path, num_input_frames: int, height: int, width: int, pad: bool = True) -> torch.Tensor:
    """The prompt clip, padded: ``[3, 33, height, width]`` float32 in [-1, 1] (``pad=False``: the real frames only).

    An image gives one frame; a video its last ``num_input_frames`` frames. The last real frame is repeated up to
    33 frames, which cannot leak into the prompt tokens (the tokenizer is causal).
    """
    is_image = path.suffix.lower() in IMAGE_SUFFIXES
    checks.check_input(path, is_image, num_input_frames)
    if is_image:
        clip = video_io.read_image(path, size=(height, width))
    else:
        clip = video_io.read_video(path, num_frames=num_input_frames, start=-num_input_frames, size=(height, width))
    return video_io.pad_frames(clip, gen.NUM_OUTPUT_FRAMES) if pad else clip


class Runner:
    """Model, tokenizer and prompt handling shared by single runs and batches (``generate_batch``)."""

    def __init__(self, opts: GenerateOptions) -> None:
        self.opts = opts
        self.rank, self.world = world()
        self.seconds = dict.fromkeys(("load", "encode", "generate", "decode", "guardrail", "write"), 0.0)
        self.load_parts: dict[str, float] = {}  # what "load" was spent on (the timing line prints it)
        if opts.started_at is not None:  # the command's own start-up: parsing, imports (the CLI's clock)
            self._loaded("startup", opts.started_at)
        t = time.perf_counter()
        self.device = checks.check_device(opts.device)
        if opts.engine == "mcore":
            from nemo_cosmos_ar.inference import engine as en

            self.device = en.init_parallel(opts.num_gpus, self.device)
        self.dtype = opts.dtype or default_dtype(self.device)
        # A TorchScript tokenizer runs only in the dtype it was traced in, so the jit backend keeps the files' own.
        self.tok_dtype = opts.tokenizer_dtype or (None if opts.tokenizer_backend == "jit" else self.dtype)
        # The checkpoint is memory-mapped: reading the config and checking shapes costs page cache, not a load.
        self.ckpt = ck.open_checkpoint(opts.checkpoint, opts.model)
        self.height, self.width = output_resolution(self.ckpt.cfg, opts.resolution)
        self.grid = latent_shape_for(gen.NUM_OUTPUT_FRAMES, self.height, self.width)
        checks.check_grid(self.grid, self.ckpt.cfg.latent_shape, self.height, self.width)
        self.ckpt = self.ckpt.with_latent_shape(self.grid)  # the RoPE positions of the 33-frame grid
        if opts.engine == "mcore":
            from nemo_cosmos_ar.inference import engine as en

            en.check_tp(self.ckpt.cfg, opts.num_gpus)
        self.engine = None
        self.tok = None
        self.guard = None
        # The diffusion decoder (rank 0, and the other ranks of a guidance split), built by load_diffusion_decoder.
        self.dd = None
        self._dd_warm = False  # warm_diffusion_decoder ran
        self.dd_split = None  # this rank's part of the guidance split (ranks 0 and 1, or all), None elsewhere
        # Whether the run splits the decoder: the same on every rank, so that every rank takes the same collectives.
        self.dd_split_on = opts.diffusion_decoder_dir is not None and opts.dd_parallel != "off" and self.world > 1
        if self.dd_split_on:
            from nemo_cosmos_ar.diffusion_decoder.parallel import make_split

            # Every rank makes the groups (collective calls); ranks past the split take no part.
            self.dd_split = make_split(self.rank, self.world, context_parallel=opts.dd_parallel == "auto")
        self.dd_stats = None  # its DecodeStats of the last video
        self._inputs: dict[tuple, Future] = {}  # prompt clips being read on a thread (prefetch_input)
        self._reader: ThreadPoolExecutor | None = None
        self.encode_beside_s = 0.0  # the prompt's encode beside the AR model load (prompt_beside)
        if opts.guardrail_dir is not None and self.rank == 0:  # the files are located now, the models load later
            from nemo_cosmos_ar.guardrails.runner import VideoGuardrails

            self.guard = VideoGuardrails.from_checkpoint_dir(
                opts.guardrail_dir, device=self.device, offload=opts.offload_guardrail
            )
            self.guard.start_loading()  # beside the tokenizer and AR model loads; load_guardrails waits
        self._loaded("setup", t)

    # ---- modules ----
    def load_engine(self):
        if self.engine is None:
            t = time.perf_counter()
            if self.opts.engine == "mcore":
                from nemo_cosmos_ar.inference import engine as en

                self.engine = en.load_engine(self.ckpt, self.opts.num_gpus, self.device, self.dtype)
                en.configure_decode(
                    self.engine,
                    self.opts.decode_attention,
                    self.opts.fused_step,
                    self.opts.decode_gemv,
                    self.opts.decode_pdl,
                    self.opts.decode_weights,
                    self.opts.decode_reduce,
                    self.opts.decode_int8_kernel,
                )
            else:
                model = ck.build_reference(self.ckpt.cfg, self.ckpt.native_state(), self.device, self.dtype)
                self.engine = gen.ReferenceEngine(model)
            self._loaded("AR model", t)
        return self.engine

    def _loaded(self, part: str, start: float) -> None:
        took = time.perf_counter() - start
        self.seconds["load"] += took
        self.load_parts[part] = self.load_parts.get(part, 0.0) + took

    def drop_engine(self) -> None:
        self.engine = None
        free_memory(self.device)

    def tokenizer(self):
        if self.tok is None:
            t = time.perf_counter()
            self.tok = load_tokenizer(self.opts.tokenizer, self.opts.tokenizer_backend, self.device, self.tok_dtype)
            self._loaded("tokenizer", t)
        return self.tok

    def drop_tokenizer(self, collect: bool = True) -> None:
        """Release the DV8x16x16 tokenizer; ``collect``: also collect and empty the CUDA cache (``free_memory``),
        as ``--offload-tokenizer`` asks. Without it (the diffusion decoder replacing its decoder) the tokenizer's
        blocks go back to torch's cache, where the diffusion decoder reuses them, at no cost."""
        self.tok = None
        if collect:
            free_memory(self.device)

    def load_guardrails(self) -> None:
        """Rank 0, unless offloading: the guardrails loaded up front, as cosmos-predict1 does (waits for the thread
        ``__init__`` started); on CUDA, one warm-up pass at the output's shapes (``VideoGuardrails.warm_up``)."""
        if self.guard is not None and not self.opts.offload_guardrail:
            t = time.perf_counter()
            self.guard.load()
            self._loaded("guardrails", t)
            if self.device.type == "cuda":
                t = time.perf_counter()
                self.guard.warm_up(gen.NUM_OUTPUT_FRAMES, self.height, self.width, OUTPUT_FPS)
                self._loaded("guardrails warm-up", t)

    @property
    def runs_dd(self) -> bool:
        """Whether this rank runs the diffusion decoder: rank 0, and the other ranks of a guidance split."""
        return self.opts.diffusion_decoder_dir is not None and (self.rank == 0 or self.dd_split is not None)

    def load_diffusion_decoder(self) -> None:
        """Ranks that run the decoder: build it. Resident, its files are checked now (a bad file fails before
        generating) and the DiT and the CV8x8x8 decoder load in the background, during the AR decode; offloaded,
        only its config and generic prompt are read, and each video loads both."""
        if not self.runs_dd or self.dd is not None:
            return
        from nemo_cosmos_ar.diffusion_decoder.pipeline import DiffusionDecoder

        t = time.perf_counter()
        off = self.opts.offload_diffusion_decoder
        self.dd = DiffusionDecoder(
            self.opts.diffusion_decoder_dir,
            self.opts.cv_tokenizer,
            device=self.device,
            dtype=self.dtype,
            offload_network=off,
            offload_tokenizer=off,
            split=self.dd_split,
            gemm=self.opts.dd_gemm,
            attention=self.opts.dd_attention,
            epilogues=self.opts.dd_epilogues,
            background=True,  # checked now, loaded while the AR model generates; waited for at the first video
        )
        self._loaded("diffusion decoder", t)

    def warm_diffusion_decoder(self) -> None:
        """Once, on CUDA: the decoder's kernels chosen before the AR model first runs (``DiffusionDecoder.
        warm_kernels``). ``generate`` calls it, as late as it can be, so that FlashAttention-4's import (started on a
        thread when the decoder was built) overlaps the AR model load and the prompt's encode."""
        if self.dd is None or self._dd_warm or self.device.type != "cuda":
            return
        t = time.perf_counter()
        self.dd.warm_kernels(self.grid[1:])
        self._dd_warm = True
        self._loaded("diffusion decoder warm-up", t)

    # ---- steps ----
    def _clip_args(self, job: Job) -> tuple:
        # The causal tokenizer's first latent frames depend on the real frames only, so the eager network encodes
        # just those (1 or 9 of the 33: a quarter of the work or less), and they are not padded (a 260 MB copy).
        # The TorchScript files get the padded 33 frames cosmos-predict1 gives them: a traced graph may hold its
        # traced clip length.
        return (job.input, job.num_input_frames, self.height, self.width, self.opts.tokenizer_backend != "eager")

    def prefetch_input(self, job: Job) -> None:
        """Start reading ``job``'s input (decode, resize, crop: 0.6 s for 9 frames at 720p on a 2-core CPU) on a
        thread, so that it overlaps the model loads; ``prompt`` takes the clip, or the error, from there."""
        if self.rank != 0 or job.input is None or job.prompt_tokens is not None:
            return
        key = self._clip_args(job)
        if key not in self._inputs:
            if self._reader is None:  # two readers: a batch chunk's inputs are read two at a time
                self._reader = ThreadPoolExecutor(2, thread_name_prefix="cosmos-ar-input")
            self._inputs[key] = self._reader.submit(load_input, *key)

    def prompt(self, job: Job) -> torch.Tensor:
        """``[1, P]`` prompt tokens of a job (rank 0): its input tokenized, or its saved grid's first frames."""
        n_frames = gen.prompt_latent_frames(job.num_input_frames)
        if job.prompt_tokens is not None:
            ids = checks.load_prompt_tokens(job.prompt_tokens)
            if tuple(ids.shape[2:]) != self.grid[1:] or ids.shape[1] < n_frames:
                raise ValueError(
                    f"--prompt-tokens {job.prompt_tokens} is a {list(ids.shape[1:])} grid; this model "
                    f"at {self.height}x{self.width} needs at least [{n_frames}, {self.grid[1]}, "
                    f"{self.grid[2]}]"
                )
            if int(ids.min()) < 0 or int(ids.max()) >= self.ckpt.cfg.vocab_size:
                raise ValueError(
                    f"--prompt-tokens {job.prompt_tokens}: ids must lie in [0, "
                    f"{self.ckpt.cfg.vocab_size}), got [{int(ids.min())}, {int(ids.max())}]"
                )
        else:
            eager = self.opts.tokenizer_backend == "eager"
            key = self._clip_args(job)
            pending = self._inputs.pop(key, None)
            clip = pending.result() if pending is not None else load_input(*key)
            frames = job.num_input_frames if eager else gen.NUM_OUTPUT_FRAMES
            expected = (n_frames if eager else self.grid[0], *self.grid[1:])
            t = time.perf_counter()
            ids = self.tokenizer().encode(clip[None, :, :frames])  # [1, T', H', W']
            self.seconds["encode"] += time.perf_counter() - t
            if tuple(ids.shape[1:]) != expected:
                raise ValueError(
                    f"the tokenizer in {self.opts.tokenizer} gives a {list(ids.shape[1:])} grid for {frames} "
                    f"frames at {self.height}x{self.width}; the model expects {list(expected)}"
                )
        return flatten_grid(ids[:, :n_frames]).long().cpu()

    def prompt_beside(self, job: Job) -> Future:
        """``prompt(job)`` on a thread, for the caller to load the AR model meanwhile; ``prompt_done`` takes it."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="cosmos-ar-encode")
        try:
            return pool.submit(self.prompt, job)
        finally:
            pool.shutdown(wait=False)  # the thread ends with its one task

    def prompt_done(self, pending: Future) -> torch.Tensor:
        """The tokens of ``prompt_beside`` (or its error). ``seconds["encode"]`` becomes the wait here, the time the
        encode added to the run; the encode's own time is ``encode_beside_s``."""
        t = time.perf_counter()
        try:
            return pending.result()
        finally:
            self.encode_beside_s, self.seconds["encode"] = self.seconds["encode"], time.perf_counter() - t

    def generate(self, prompts: torch.Tensor, seeds: list[int], bar=False) -> tuple[torch.Tensor, gen.DecodeStats]:
        """Grids ``[B, T', H', W']`` (CPU) for prompts ``[B, P]``; row r drawn from a generator seeded ``seeds[r]``."""
        engine = self.load_engine()
        self.warm_diffusion_decoder()
        t = time.perf_counter()
        gens = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        seq, stats = gen.generate_tokens(
            engine,
            prompts.to(self.device),
            self.ckpt.cfg.seq_length,
            self.opts.sampling,
            gens[0] if len(gens) == 1 else gens,
            progress=bar,
            options=self.opts.decode,
        )
        if self.world > 1:
            check_ranks_agree(seq)
        if self.opts.offload_ar_model:
            self.drop_engine()
        self.seconds["generate"] += time.perf_counter() - t
        return unflatten_grid(seq, self.grid).cpu(), stats

    def distribute(self, payload):
        """Rank 0's ``payload`` (or error) on every rank, after the other ranks of a guidance split have built their
        decoders: an error there reaches every rank too (``share``), so none goes on to wait for it."""
        if not self.dd_split_on:
            return broadcast(payload, self.rank, self.world)
        error = None
        if self.rank != 0:
            try:
                self.load_diffusion_decoder()  # a no-op on ranks past the split
            except Exception as err:  # noqa: BLE001 - every rank raises it
                error = err
        return share(payload, self.rank, self.world, error)

    def decode_partner(self, job: Job, tokens: torch.Tensor) -> None:
        """A rank of a guidance split other than 0: its part of the diffusion decoder's passes for the grid rank 0
        is writing."""
        if self.dd is not None and self.dd_split is not None and self.rank != 0:
            try:
                self.dd.decode_tokens(tokens, seed=job.seed)
            except (ValueError, FileNotFoundError) as err:
                raise DiffusionDecoderError(str(err)) from None

    def render(self, job: Job, tokens: torch.Tensor) -> torch.Tensor:
        """Decode one grid ``[1, T', H', W']`` and run the guardrails (rank 0): the uint8 ``[T, H, W, 3]`` frames to
        write, on the CPU. Raises ``UnsafeVideo`` for a video the safety filter flags."""
        return self._guarded(job, self._decoded(job, tokens))

    def _decoded(self, job: Job, tokens: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        if self.dd is not None:  # the seed of the job's tokens seeds its noise too, as cosmos-predict1's --seed
            try:
                # [3, 33, H, W] float32 in [-1, 1], left on the GPU: host_frames makes the uint8 frames there
                video = self.dd.decode_tokens(tokens, seed=job.seed, on_device=True)[0]
            except (ValueError, FileNotFoundError) as err:  # our tokens are valid: its weights are not
                raise DiffusionDecoderError(str(err)) from None
            self.dd_stats = self.dd.stats
        else:
            video = self.tokenizer().decode(tokens.to(self.device))[0]  # [3, 33, H, W] float32, about [-1, 1]
        self.seconds["decode"] += time.perf_counter() - t
        t = time.perf_counter()
        frames = writer.host_frames(video, "CTHW")  # clamped, rounded: what is written (and what guardrails see)
        self.seconds["write"] += time.perf_counter() - t
        return frames

    def _guarded(self, job: Job, frames: torch.Tensor) -> torch.Tensor:
        if self.guard is not None:  # before anything is written: an unsafe video leaves no file at all
            t = time.perf_counter()
            verdict, frames = self.guard(frames, fps=OUTPUT_FPS)
            self.seconds["guardrail"] += time.perf_counter() - t
            if frames is None:
                raise UnsafeVideo(job.output, verdict)
        return frames

    def write(self, job: Job, tokens: torch.Tensor) -> None:
        """Decode one grid ``[1, T', H', W']`` and write the job's outputs (rank 0; batch mode renders here and
        writes on its writer thread)."""
        frames = self._decoded(job, tokens)
        # the MP4 encodes on a thread while the guardrails run (BENCHMARKS.md, issue 13, thirteenth session)
        early = writer.EarlyEncode(frames, OUTPUT_FPS) if self.guard is not None else None
        try:
            final = self._guarded(job, frames)
            t = time.perf_counter()
            encoded = early.take(final) if early is not None else None
            writer.save_outputs(job, tokens, final, OUTPUT_FPS, self.opts.overwrite, encoded=encoded)
            self.seconds["write"] += time.perf_counter() - t
        finally:
            if early is not None:
                early.close()  # after the write: a blurred video's second encode need not wait for the first


def generate_video(opts: GenerateOptions) -> GenerationResult:
    """Run the whole pipeline for one input (see the module docstring) and return the tokens and timings.

    Raises:
        FileNotFoundError / FileExistsError: a missing input, checkpoint, tokenizer, diffusion decoder file or
            guardrail weights; an existing output.
        ValueError: unusable input (``VideoError``), a checkpoint that does not fit (``CheckpointMismatch``), a bad
            option, an output that cannot be written, unusable guardrail weights (``GuardrailWeightsError``) or
            diffusion decoder weights (``diffusion_decoder.checkpoint.CheckpointError``, ``DiffusionDecoderError``).
        UnsafeVideo (a ValueError): the safety filter flagged the video; nothing was written.
    """
    if opts.input is None and opts.prompt_tokens is None:
        raise ValueError("pass an input image or video (--input), or a saved token grid (--prompt-tokens)")
    job = Job(0, opts.input, opts.output, opts.save_tokens, opts.seed, opts.num_input_frames, opts.prompt_tokens)
    check_common(opts)
    checks.check_dependencies(opts.input is not None and not opts.is_image)
    check_job_paths(opts, job)
    runner = Runner(opts)
    rank = runner.rank
    runner.prefetch_input(job)  # read while the models load
    pending = None
    if rank == 0 and not opts.offload_tokenizer and opts.prompt_tokens is None:
        runner.tokenizer()
        if not opts.offload_ar_model:  # the prompt encoded on a thread while the AR model loads
            pending = runner.prompt_beside(job)
    early = None
    if rank == 0 and pending is not None:  # the diffusion decoder's background load beside the AR model load
        try:
            runner.load_diffusion_decoder()
        except Exception as err:
            if runner.world == 1:  # nothing to wait for: fail before the AR model loads
                raise
            early = err  # raised below, once every rank has loaded its AR model shard (they load in step)
    if not opts.offload_ar_model:
        runner.load_engine()
    payload = None
    if rank == 0:
        try:
            if early is not None:
                raise early
            runner.load_guardrails()
            # The decoder's background load (3.5 s alone on the H200) slows whatever GPU work runs beside it, so
            # it starts as early as it can: beside the AR model load when the prompt is encoded on a thread (its
            # warm-up, one DiT block, still runs before the AR model generates, as it must). Otherwise after the
            # prompt's encode, which it slowed from 0.4 to 1.1-1.8 s; the capture beside it is safe (thread-local,
            # generator.py). Never after the AR prefill: beside the decode it cost 0.6-2.7 s (calls a10, c10).
            payload = runner.prompt(job) if pending is None else runner.prompt_done(pending)
            runner.load_diffusion_decoder()  # (when not loaded above)
        except Exception as err:  # travels to the other ranks, which raise it too
            payload = err
        if opts.offload_tokenizer or runner.dd is not None:  # the diffusion decoder needs no DV8x16x16 decoder
            runner.drop_tokenizer(collect=opts.offload_tokenizer)
    payload = runner.distribute(payload)
    if isinstance(payload, Exception):
        raise payload
    grid, stats = runner.generate(payload, [opts.seed], bar=opts.progress and rank == 0)
    if rank == 0:
        runner.write(job, grid)
        if opts.offload_tokenizer:
            runner.drop_tokenizer()
    else:
        runner.decode_partner(job, grid)
    return GenerationResult(
        opts.output,
        grid,
        gen.prompt_latent_frames(opts.num_input_frames),
        stats,
        runner.seconds,
        runner.dd_stats,
        runner.load_parts,
        runner.encode_beside_s,
    )
