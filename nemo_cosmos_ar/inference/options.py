"""What one ``cosmos-ar generate`` run is asked to do, and the checks made on it before anything heavy loads.

``GenerateOptions`` holds the settings of a run (single or batch), ``Job`` one video to make; ``check_common`` and
``check_job_paths`` look at files, the device and the process count only, so every mistake they catch costs no model
load. ``pipeline.py`` runs the jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from nemo_cosmos_ar.diffusion_decoder.config import CV_TOKENIZER_FOLDER, DECODER_FOLDER
from nemo_cosmos_ar.inference import checks
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.engine import INT8_KERNELS, world  # importing engine loads no Megatron (its functions do)
from nemo_cosmos_ar.inference.sampling import SamplingConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_TOKENIZER = "checkpoints/Cosmos-Tokenize1-DV8x16x16-720p"
DEFAULT_CHECKPOINT = "checkpoints/Cosmos-Predict1-4B/model.pt"
# the folder names `cosmos-ar download` writes, as the diffusion decoder names them
DIFFUSION_DECODER_DIR, CV_TOKENIZER_DIR = DECODER_FOLDER, CV_TOKENIZER_FOLDER
ENGINES = ("mcore", "reference")


DD_PARALLEL = ("auto", "guidance", "off")  # --diffusion-decoder-parallel
DD_ATTENTION = ("auto", "sdpa", "fa4")  # --diffusion-decoder-attention (diffusion_decoder/attention.py)


@dataclass(kw_only=True)
class GenerateOptions:
    """Everything one generation needs. Paths and settings are checked before anything heavy is loaded.

    Attributes:
        input: image (``.png``, ``.jpg`` ...) or video file; None when ``prompt_tokens`` gives the prompt.
        output: MP4 to write; refused if it exists unless ``overwrite``.
        checkpoint: ``model.pt``, ``iter_*.pt``, TP shards, a Hugging Face folder, or a NeMo checkpoint
            (``.../checkpoints/step=N-last`` or the ``checkpoints`` folder of a post-training run).
        tokenizer: folder with ``encoder.jit`` and ``decoder.jit`` (Cosmos-Tokenize1-DV8x16x16-720p layout).
        model: architecture: preset name or ``config.json``; None = from the checkpoint.
        num_input_frames: 9 (last 9 frames of a video) or 1; images always use 1.
        resolution: ``(height, width)`` of the output; None = the model's grid × 16 (640x1024 for 4B/12B).
        sampling: temperature / top-p / top-k.
        seed: seed of the sampling generator (``torch.Generator`` on the model's device).
        device: ``"cuda"``, ``"cpu"`` ...; None = CUDA when available (under torchrun: this rank's GPU).
        dtype: model dtype; None = bf16 on CUDA (as cosmos-predict1), fp32 on CPU.
        tokenizer_dtype / tokenizer_backend: see ``tokenizer.backends.load_tokenizer``.
        started_at: ``time.perf_counter()`` when the command started (the CLI sets it): the time until the run's
            set-up begins (argument parsing, imports) is counted as the "startup" part of its load time.
        offload_ar_model / offload_tokenizer: cosmos-predict1's offloading (delete after use, reload when needed).
        overwrite: replace existing outputs.
        save_tokens: also save the full token grid ``[1, T', H', W']`` int64 (``torch.save``) here.
        prompt_tokens: a saved grid (``save_tokens``) whose first latent frame(s) are the prompt, instead of ``input``.
        progress: tqdm bar over the generated tokens.
        decode: how decoding steps run (``generator.DecodeOptions``).
        decode_attention, fused_step, decode_gemv, decode_pdl: the Megatron engine's decode attention, fused step,
            batch-1 matrix-vector kernel and programmatic dependent launch (``engine.configure_decode``; "auto" =
            the fastest measured on the device).
        decode_reduce: "auto", "nccl" or "symm": the batch-1 step's TP all-reduces (``symm_reduce.py``).
        decode_weights: "bf16" or "int8" (weight-only int8 for the batch-1 decode, ``quant.py``; changes the
            outputs, so off by default; Megatron engine at batch size 1 only).
        decode_int8_kernel: "auto", "cuda", "fused" or "triton": the kernel of the int8 products
            (``engine.configure_decode``).
        engine: "mcore" (the Megatron-Core model, any TP) or "reference" (plain PyTorch, one process).
        num_gpus: tensor-parallel size; must equal the number of torchrun processes.
        batch_size: prompts decoded together (batch mode).
        guardrail_dir: the checkpoints folder holding the guardrail weights (``guardrails.paths``); every video is
            safety-checked and face-blurred before it is written. None: no guardrails.
        offload_guardrail: load the guardrail models right before each use and delete them after.
        diffusion_decoder_dir: folder with the 7B diffusion decoder's ``model.pt`` and ``aux_vars.pt``; when set, it
            decodes the tokens instead of the DV8x16x16 decoder. None: the DV8x16x16 decoder.
        cv_tokenizer: folder with the CV8x8x8 ``decoder.jit`` and ``mean_std.pt``; None = the
            ``Cosmos-Tokenize1-CV8x8x8-720p`` next to ``diffusion_decoder_dir`` (``cosmos-ar download``'s layout).
        offload_diffusion_decoder: load the diffusion decoder (DiT and CV8x8x8 decoder) for each video and delete it
            after, as cosmos-predict1's ``--offload_diffusion_decoder``.
        dd_parallel: "auto": on two or more GPUs the diffusion decoder's conditional and unconditional passes run on
            ranks 0 and 1 (``diffusion_decoder/parallel.py``; half the sampling time, the DiT on both GPUs), and on
            four or more each pass is also cut by context parallelism over half the ranks; "guidance": ranks 0 and
            1 only, at any count; "off": rank 0 runs both.
        dd_gemm: "bf16" or "fp8": the diffusion decoder's DiT projections as e4m3 GEMMs (``diffusion_decoder/fp8.py``;
            faster on FP8 GPUs, changes the video slightly).
        dd_attention: the DiT's attention kernel (``diffusion_decoder/attention.py``): "auto" (FlashAttention-4
            where it is installed and runs, else torch SDPA), "sdpa" or "fa4"; the same attention either way, up to
            bf16 rounding.
        dd_epilogues: "auto" (bf16 DiT on a GPU: the MLP's GELU and the gated residuals computed by the cuBLAS
            products before them, ``diffusion_decoder/epilogues.py``; up to bf16 rounding) or "off" (separate
            passes).
    """

    input: Path | None = None
    output: Path = Path("outputs/output.mp4")
    checkpoint: Path = Path(DEFAULT_CHECKPOINT)
    tokenizer: Path = Path(DEFAULT_TOKENIZER)
    model: str | None = None
    num_input_frames: int = 9
    resolution: tuple[int, int] | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0
    device: str | None = None
    dtype: torch.dtype | None = None
    tokenizer_dtype: torch.dtype | None = None
    tokenizer_backend: str = "eager"
    started_at: float | None = None
    offload_ar_model: bool = False
    offload_tokenizer: bool = False
    overwrite: bool = False
    save_tokens: Path | None = None
    prompt_tokens: Path | None = None
    progress: bool = True
    decode: gen.DecodeOptions = field(default_factory=gen.DecodeOptions)
    decode_attention: str = "auto"
    fused_step: str = "auto"
    decode_gemv: str = "auto"
    decode_pdl: str = "auto"
    decode_reduce: str = "auto"
    decode_weights: str = "bf16"
    decode_int8_kernel: str = "auto"
    engine: str = "mcore"
    num_gpus: int = 1
    batch_size: int = 1
    guardrail_dir: Path | None = None
    offload_guardrail: bool = False
    diffusion_decoder_dir: Path | None = None
    cv_tokenizer: Path | None = None
    offload_diffusion_decoder: bool = False
    dd_parallel: str = "auto"
    dd_gemm: str = "bf16"
    dd_attention: str = "auto"
    dd_epilogues: str = "auto"

    def __post_init__(self) -> None:
        self.output, self.checkpoint, self.tokenizer = Path(self.output), Path(self.checkpoint), Path(self.tokenizer)
        self.input = None if self.input is None else Path(self.input)
        self.save_tokens = None if self.save_tokens is None else Path(self.save_tokens)
        self.prompt_tokens = None if self.prompt_tokens is None else Path(self.prompt_tokens)
        self.guardrail_dir = None if self.guardrail_dir is None else Path(self.guardrail_dir)
        if self.diffusion_decoder_dir is not None:
            self.diffusion_decoder_dir = Path(self.diffusion_decoder_dir)
            self.cv_tokenizer = Path(self.cv_tokenizer or self.diffusion_decoder_dir.parent / CV_TOKENIZER_DIR)
        if self.input is not None and self.prompt_tokens is not None:
            raise ValueError("pass either --input or --prompt-tokens, not both")
        if self.is_image:
            self.num_input_frames = 1  # as cosmos-predict1's validate_args: an image is a one-frame prompt
        gen.prompt_latent_frames(self.num_input_frames)  # validates 1 or 9
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.num_gpus < 1 or self.batch_size < 1:
            raise ValueError(f"--num-gpus and --batch-size must be >= 1, got {self.num_gpus} and {self.batch_size}")
        if self.decode_weights not in ("bf16", "int8"):
            raise ValueError(f"--decode-weights must be bf16 or int8, got {self.decode_weights!r}")
        if self.decode_weights == "int8" and (self.engine != "mcore" or self.batch_size != 1):
            raise ValueError(
                "--decode-weights int8 is for the Megatron engine's batch-1 decode: use --engine mcore and "
                f"--batch-size 1 (got --engine {self.engine}, --batch-size {self.batch_size})"
            )
        if self.decode_int8_kernel not in INT8_KERNELS:
            raise ValueError(f"--decode-int8-kernel must be one of {INT8_KERNELS}, got {self.decode_int8_kernel!r}")
        if self.dd_gemm not in ("bf16", "fp8"):
            raise ValueError(f"--diffusion-decoder-gemm must be bf16 or fp8, got {self.dd_gemm!r}")
        if self.dd_epilogues not in ("auto", "off"):
            raise ValueError(f"--diffusion-decoder-epilogues must be auto or off, got {self.dd_epilogues!r}")
        if self.dd_attention not in DD_ATTENTION:
            raise ValueError(f"--diffusion-decoder-attention must be one of {DD_ATTENTION}, got {self.dd_attention!r}")
        if self.dd_parallel not in DD_PARALLEL:
            raise ValueError(f"--diffusion-decoder-parallel must be one of {DD_PARALLEL}, got {self.dd_parallel!r}")
        if self.seed < 0 or self.seed >= 2**63:
            raise ValueError(f"--seed must be in [0, 2**63), got {self.seed}")

    @property
    def is_image(self) -> bool:
        return self.input is not None and self.input.suffix.lower() in IMAGE_SUFFIXES


@dataclass
class Job:
    """One video to make: its prompt source, where it goes, its seed. ``line`` is the jsonl line (0: single run)."""

    line: int
    input: Path | None
    output: Path
    save_tokens: Path | None
    seed: int
    num_input_frames: int
    prompt_tokens: Path | None = None


def check_job_paths(opts: GenerateOptions, job: Job) -> None:
    """The checks of one job that need no model: its input exists, its outputs are writable and not inputs."""
    if job.input is not None and not job.input.is_file():
        where = "with --input" if job.line == 0 else 'as "visual_input"'
        raise FileNotFoundError(f"input {job.input} does not exist (pass an image or a video file {where})")
    if job.prompt_tokens is not None:
        checks.load_prompt_tokens(job.prompt_tokens)
    inputs = {
        "input": job.input,
        "prompt tokens": job.prompt_tokens,
        "checkpoint": opts.checkpoint,
        "tokenizer": opts.tokenizer,
        "diffusion decoder": opts.diffusion_decoder_dir,
        "CV8x8x8 tokenizer": opts.cv_tokenizer,
    }
    checks.check_output(job.output, "--output", opts.overwrite, ".mp4")
    checks.check_not_an_input(job.output, "--output", inputs)
    if job.save_tokens is not None:
        if checks.same_file(job.save_tokens, job.output):
            raise ValueError(
                f"--save-tokens {job.save_tokens} is the video output too; give the tokens their own "
                "file (e.g. grid.pt)"
            )
        checks.check_output(job.save_tokens, "--save-tokens", opts.overwrite)
        checks.check_not_an_input(job.save_tokens, "--save-tokens", inputs)
    if job.input is not None:  # last: the one check that opens the input file
        checks.check_input(job.input, job.input.suffix.lower() in IMAGE_SUFFIXES, job.num_input_frames)


def check_common(opts: GenerateOptions) -> None:
    """The checks shared by every job: model files, device, dependencies, TP size."""
    if not opts.checkpoint.exists():
        raise FileNotFoundError(
            f"checkpoint {opts.checkpoint} does not exist (pass the model.pt of "
            "Cosmos-Predict1-4B, a post-trained export or a NeMo checkpoint with --checkpoint)"
        )
    if not opts.tokenizer.is_dir():
        raise FileNotFoundError(
            f"tokenizer folder {opts.tokenizer} does not exist (download "
            "Cosmos-Tokenize1-DV8x16x16-720p there, or pass --tokenizer)"
        )
    rank, size = world()
    if size != opts.num_gpus:
        raise ValueError(
            f"--num-gpus {opts.num_gpus} but {size} process(es) run: start it as `torchrun "
            f"--nproc-per-node {opts.num_gpus} -m nemo_cosmos_ar.cli generate ... --num-gpus "
            f"{opts.num_gpus}` (or drop --num-gpus for one process)"
        )
    if size > 1 and opts.engine != "mcore":
        raise ValueError(
            f"--engine {opts.engine} has no tensor parallelism; under torchrun with {size} processes "
            "use the default engine (mcore)"
        )
    checks.check_device(opts.device)
    if opts.guardrail_dir is not None:  # every rank: a file-system look, so all fail alike before any model loads
        from nemo_cosmos_ar.guardrails.paths import find_guardrail_files

        find_guardrail_files(opts.guardrail_dir)
    if opts.diffusion_decoder_dir is not None:  # every rank too, though only ranks 0 and 1 load it
        checks.check_diffusion_decoder(opts.diffusion_decoder_dir, opts.cv_tokenizer)
