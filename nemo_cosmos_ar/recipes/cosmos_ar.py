"""Post-training recipes for Cosmos-Predict1 AR, as NeMo-Run factories of ``llm.finetune`` (and ``llm.pretrain``).

Usage::

    nemo llm finetune --factory "cosmos_ar_4b_tealrobotsmall_tp1(data_path=datasets/tealrobot_video_small,base_checkpoint=checkpoints/Cosmos-Predict1-4B-nemo)" -y
    nemo llm finetune --factory cosmos_ar_4b_tealrobot_tp4 resume.restore_config.path=ckpts/4b-nemo trainer.max_steps=1000 --dryrun
    nemo llm finetune --factory "cosmos_ar_4b_tealrobotsmall_tp1(resolution=480x640,num_frames=17,data_path=...,base_checkpoint=...)"
    nemo llm finetune --factory "cosmos_ar_4b_tealrobotsmall_tp1(peft=lora,data_path=...,base_checkpoint=...)" peft.dim=16

Arguments of the GPU recipes (all optional):
  data_path         a ``cosmos-ar prepare-data`` folder; without it the run trains on mock clips (and says so).
  base_checkpoint   the NeMo checkpoint of the base model (``cosmos-ar convert import``); a finetune without one
                    refuses to start unless ``allow_random_init=True``.
  max_steps         run length; the 5,000-step warm-up shrinks to 10% of a shorter run (``_common.warmup_for``).
  resolution        HEIGHTxWIDTH of the clips (multiples of 16); num_frames: frames per clip (1 + 8k). The latent
                    grid follows them (``tokenizer/grid.py``). Unset, the grid is the dataset's (its metadata.json)
                    or the recipe's default. ``model.config.latent_shape`` is not a CLI override: use these.
  num_nodes         (multi-GPU recipes) nodes of ``devices`` GPUs each; one clip per GPU per step.
  peft              "lora": train LoRA adapters on the frozen base model (``nemo_glue/lora.py``: defaults and why);
                    None (default): all weights. Rank etc. are overrides: ``peft.dim=16 peft.alpha=16
                    peft.dropout=0.05 peft.target_modules=[linear_qkv,linear_proj]``. The run is named ``<name>_lora``;
                    its checkpoints hold only the adapters (``cosmos-ar convert export`` merges them into the base).

The guide's experiment names work too: ``base_4b_example_tealrobotsmall_tp1``, ``base_4b_example_tealrobot_tp4``
(checkpoints then go under that name, where cosmos-predict1 users look for them).

Every setting is overridable with ``a.b=c``. Parallelism knobs: ``trainer.strategy.tensor_model_parallel_size``,
``...sequence_parallel``, ``...context_parallel_size`` (needs the TE layer spec), ``optim.config.use_distributed_optimizer``,
activation recompute via ``model.config.recompute_granularity=full model.config.recompute_method=uniform
model.config.recompute_num_layers=1``.
"""

import functools
import inspect
import json
import os
from typing import Optional

import nemo_run as run
import torch
from nemo.collections import llm

from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.nemo_glue.data_module import CosmosVideoDataModule
from nemo_cosmos_ar.nemo_glue.model import NEMO_CONFIGS, CosmosARModel
from nemo_cosmos_ar.recipes import _common
from nemo_cosmos_ar.tokenizer import grid

NUM_FRAMES = 33  # cosmos-predict1 trains on 33-frame clips (5 latent frames)
# Layers of the 4B whose activations the 24 GB LoRA recipe recomputes (an estimate until measured: see its docstring).
LORA_24GB_RECOMPUTE = 8


class RecipeError(ValueError):
    """A recipe argument that cannot work (the ``nemo`` CLI prints it as one line)."""


def _model(
    preset: str,
    latent_shape,
    bf16: bool = True,
    recompute_layers: int = 0,
    gpu_fusions: bool = False,
    precision: str = "32",
) -> run.Config[CosmosARModel]:
    config = run.Config(
        NEMO_CONFIGS[preset],
        latent_shape=tuple(latent_shape),
        bf16=bf16,
        params_dtype=torch.bfloat16 if bf16 else torch.float32,
    )
    if gpu_fusions:
        # Fused SwiGLU and RoPE (torch.compile kernels: Megatron's own SwiGLU fusion, model/fused_rope.py) and, in
        # pure bf16, weight gradients accumulated by the GEMM itself (model/fused_wgrad.py). Measured one by one
        # on an H200 in BENCHMARKS.md. Off on CPU, where torch.compile would need a compiler and buys nothing.
        config.bias_activation_fusion = True
        config.apply_rope_fusion = True
        config.gradient_accumulation_fusion = precision == "bf16"
    if recompute_layers:
        # Full recompute of the first N layers of the block: their activations are rebuilt in the backward
        # (about 1/3 more compute for those layers) instead of being kept.
        config.recompute_granularity, config.recompute_method = "full", "block"
        config.recompute_num_layers = recompute_layers
    return run.Config(CosmosARModel, config=config)


def _flops(preset: str, latent_shape) -> float:
    cfg = get_preset(preset).with_latent_shape(tuple(latent_shape))
    return cfg.train_flops_per_token(cfg.seq_length - 1)


def _entrypoint(fn, parts: dict, peft: Optional[str] = None) -> run.Partial:
    try:
        lora = _common.peft(peft)
    except ValueError as e:
        raise RecipeError(str(e)) from None
    if fn is llm.finetune:
        # No text tokenizer: "model" hands the model's (None) to the data module, which yields token ids itself.
        task = run.Partial(llm.finetune, peft=lora, tokenizer="model", **parts)
        _common.finish_peft(task)
        return task
    if lora is not None:
        raise RecipeError(
            f"peft={peft!r} adapts a trained model: use `nemo llm finetune` (pretraining trains all weights)"
        )
    return run.Partial(fn, **parts)


def dataset_grid(data_path: Optional[str]) -> Optional[tuple[int, int, int]]:
    """The latent grid recorded in a prepared dataset's metadata.json, or None when there is no readable one (no
    data, or a path that only exists on the cluster: the data module checks it there at run time)."""
    if not data_path:
        return None
    try:
        with open(os.path.join(data_path, "metadata.json")) as f:
            return tuple(int(x) for x in json.load(f)["latent_shape"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clip_grid(
    default_resolution: str,
    resolution: Optional[str] = None,
    num_frames: Optional[int] = None,
    data_path: Optional[str] = None,
) -> tuple[int, int, int]:
    """The recipe's latent grid: from ``resolution``/``num_frames`` when given, else from the dataset's metadata,
    else ``default_resolution`` at 33 frames. Refuses a grid that differs from the dataset's."""
    data = dataset_grid(data_path)
    if resolution is None and num_frames is None and data is not None:
        return data
    try:
        res = grid.parse_resolution(resolution or default_resolution)
        shape = grid.latent_shape(NUM_FRAMES if num_frames is None else int(num_frames), *res)
    except ValueError as e:
        raise RecipeError(f"resolution={resolution or default_resolution} num_frames={num_frames}: {e}") from None
    if data is not None and data != shape:
        frames, height, width = grid.clip_size(data)
        raise RecipeError(
            f"{data_path} holds {frames}-frame {height}x{width} clips (grid {'x'.join(map(str, data))}) but the "
            f"recipe asks for grid {'x'.join(map(str, shape))}: drop resolution=/num_frames= to train at the "
            f"data's size, or pass resolution={height}x{width},num_frames={frames}"
        )
    return shape


def gpu_recipe(
    name: str,
    preset: str,
    latent_shape: tuple[int, int, int],
    tensor_parallel: int,
    devices: int,
    num_nodes: int = 1,
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 50_000,
    save_every: int = 1000,
    output_root: Optional[str] = None,
    fn=llm.finetune,
    allow_random_init: bool = False,
    precision: str = "bf16",
    recompute_layers: int = 0,
    peft: Optional[str] = None,
) -> run.Partial:
    """A complete post-training run on GPUs; one clip per GPU per step (global batch = data-parallel size).

    ``precision``: "bf16" (cosmos-predict1's pure bf16, no fp32 master copy) or "bf16-mixed" (fp32 master weights
    and Adam states: ~40 GB more for the 4B); ``recompute_layers``: recompute the activations of that many layers
    in the backward (saves memory, costs time). See ``nemo_glue/precision.py``. ``peft="lora"``: train LoRA
    adapters on the frozen model instead of all weights (``nemo_glue/lora.py``); the run is named ``<name>_lora``.
    """
    dp = devices * num_nodes // tensor_parallel
    warmup = _common.warmup_for(max_steps)
    if warmup < _common.WARMUP_STEPS:
        _common.note(
            f"{name}: warm-up {warmup} steps (10% of max_steps={max_steps}; the full 50,000-step "
            f"schedule warms up for {_common.WARMUP_STEPS:,})"
        )
    parts = dict(
        model=_model(preset, latent_shape, recompute_layers=recompute_layers, gpu_fusions=True, precision=precision),
        data=run.Config(
            CosmosVideoDataModule,
            path=data_path,
            latent_shape=latent_shape,
            micro_batch_size=1,
            global_batch_size=dp,
            num_workers=2,
        ),
        trainer=_common.trainer(
            num_nodes=num_nodes,
            devices=devices,
            tensor_parallel=tensor_parallel,
            max_steps=max_steps,
            save_every=save_every,
            flops_per_token=_flops(preset, latent_shape),
            precision=precision,
        ),
        optim=_common.optimizer(max_steps=max_steps, warmup_steps=warmup),
        log=_common.logger(name, output_root),
        resume=_common.resume(base_checkpoint, allow_random_init=allow_random_init or fn is llm.pretrain),
    )
    return _entrypoint(fn, parts, peft)


def _alias(factory, alias: str):
    """Register ``factory`` again under cosmos-predict1's experiment name ``alias``; the run (and its checkpoints)
    is then named ``alias`` too."""
    target = getattr(factory, "wrapped", factory)

    @functools.wraps(target)
    def aliased(*args, **kwargs):
        task = target(*args, **kwargs)
        task.log = _common.logger(alias)
        _common.finish_peft(task)  # a LoRA run: <alias>_lora
        return task

    aliased.__name__ = aliased.__qualname__ = alias
    aliased.__doc__ = f"cosmos-predict1's name for ``{target.__name__}``: {target.__doc__}"
    aliased.__signature__ = inspect.signature(target)
    return run.cli.factory(target=llm.finetune, name=alias)(aliased)


# ---- 4B, 1 GPU, 384x640 (cosmos-predict1's base_4b_example_tealrobotsmall_tp1) ----
@run.cli.factory(target=llm.finetune, name="cosmos_ar_4b_tealrobotsmall_tp1")
def cosmos_ar_4b_tealrobotsmall_tp1(
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 50_000,
    resolution: Optional[str] = None,
    num_frames: Optional[int] = None,
    allow_random_init: bool = False,
    precision: str = "bf16",
    recompute_layers: int = 0,
    peft: Optional[str] = None,
) -> run.Partial:
    """4B on 1 GPU, TP=1, 33 frames at 384x640 (latent 5x24x40 = 4,800 tokens).

    Pure bf16 by default, as cosmos-predict1: it fits an 80 GB GPU (bf16-mixed's fp32 master weights and Adam
    states do not: 87 GiB peak on an H200).
    """
    shape = clip_grid("384x640", resolution, num_frames, data_path)
    return gpu_recipe(
        "cosmos_ar_4b_tealrobotsmall_tp1",
        "4b",
        shape,
        tensor_parallel=1,
        devices=1,
        data_path=data_path,
        base_checkpoint=base_checkpoint,
        max_steps=max_steps,
        allow_random_init=allow_random_init,
        precision=precision,
        recompute_layers=recompute_layers,
        peft=peft,
    )


# ---- 4B, 4 GPUs, TP=4, 640x848 (cosmos-predict1's base_4b_example_tealrobot_tp4) ----
@run.cli.factory(target=llm.finetune, name="cosmos_ar_4b_tealrobot_tp4")
def cosmos_ar_4b_tealrobot_tp4(
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 50_000,
    num_nodes: int = 1,
    resolution: Optional[str] = None,
    num_frames: Optional[int] = None,
    allow_random_init: bool = False,
    precision: str = "bf16",
    recompute_layers: int = 0,
    peft: Optional[str] = None,
) -> run.Partial:
    """4B on 4 GPUs per node, TP=4, 33 frames at 640x848 (latent 5x40x53 = 10,600 tokens). Pure bf16 as
    cosmos-predict1; ``precision="bf16-mixed"`` also fits here (32 GiB per GPU)."""
    shape = clip_grid("640x848", resolution, num_frames, data_path)
    return gpu_recipe(
        "cosmos_ar_4b_tealrobot_tp4",
        "4b",
        shape,
        tensor_parallel=4,
        devices=4,
        num_nodes=num_nodes,
        data_path=data_path,
        base_checkpoint=base_checkpoint,
        max_steps=max_steps,
        save_every=1000,
        allow_random_init=allow_random_init,
        precision=precision,
        recompute_layers=recompute_layers,
        peft=peft,
    )


# ---- 12B, 8 GPUs, TP=8, 640x848 ----
@run.cli.factory(target=llm.finetune, name="cosmos_ar_12b_tealrobot_tp8")
def cosmos_ar_12b_tealrobot_tp8(
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 50_000,
    num_nodes: int = 1,
    resolution: Optional[str] = None,
    num_frames: Optional[int] = None,
    allow_random_init: bool = False,
    precision: str = "bf16",
    recompute_layers: int = 0,
    peft: Optional[str] = None,
) -> run.Partial:
    """12B on 8 GPUs per node, TP=8, 33 frames at 640x848 (latent 5x40x53 = 10,600 tokens).

    Why TP=8: 11.56 B parameters need 8 bytes each in pure bf16 (weights, gradients, two Adam states: ~92 GB) and
    ~20 in bf16-mixed (fp32 master copy, Adam states and gradients: ~231 GB) before activations; split 8 ways that
    is ~12 / ~29 GB per GPU, leaving room for 10,600-token activations on 80 GB GPUs in either mode. TP=8 is the
    largest size the 8 KV heads allow; add nodes for data parallelism.
    """
    shape = clip_grid("640x848", resolution, num_frames, data_path)
    return gpu_recipe(
        "cosmos_ar_12b_tealrobot_tp8",
        "12b",
        shape,
        tensor_parallel=8,
        devices=8,
        num_nodes=num_nodes,
        data_path=data_path,
        base_checkpoint=base_checkpoint,
        max_steps=max_steps,
        allow_random_init=allow_random_init,
        precision=precision,
        recompute_layers=recompute_layers,
        peft=peft,
    )


# ---- 4B LoRA on one 24 GB GPU, 384x640 ----
@run.cli.factory(target=llm.finetune, name="cosmos_ar_4b_tealrobotsmall_lora_24gb")
def cosmos_ar_4b_tealrobotsmall_lora_24gb(
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 50_000,
    resolution: Optional[str] = None,
    num_frames: Optional[int] = None,
    allow_random_init: bool = False,
    recompute_layers: int = LORA_24GB_RECOMPUTE,
    peft: Optional[str] = "lora",
) -> run.Partial:
    """4B LoRA on ONE 24 GB GPU (RTX 4090 / L4 / A10 class, where cosmos-predict1's trainer cannot run the 4B):
    ``cosmos_ar_4b_tealrobotsmall_tp1``'s clips (33 frames at 384x640, 4,800 tokens), pure bf16, LoRA with the
    defaults of ``nemo_glue/lora.py``, and the activations of the first ``recompute_layers`` of 16 layers recomputed
    in the backward.

    Why it fits (from the full recipe's measured 45.2 GiB at 4,800 tokens, BENCHMARKS.md): the frozen bf16 weights
    are 7.5 GiB and get no gradients or Adam states (the adapters' are 0.3 GiB); what remains is activations, about
    0.85 GiB per layer plus ~1.5 GiB for logits and loss, ~15 GiB in all. A recomputed layer keeps only its input
    (38 MB). ``bench/bench_lora.py`` measures it under a 22 GiB cap.
    """
    if peft is None or str(peft).strip().lower() in ("", "none", "null"):
        raise RecipeError(
            "cosmos_ar_4b_tealrobotsmall_lora_24gb is the LoRA variant (full post-training of the 4B "
            "needs an 80 GB GPU: cosmos_ar_4b_tealrobotsmall_tp1)"
        )
    shape = clip_grid("384x640", resolution, num_frames, data_path)
    return gpu_recipe(
        "cosmos_ar_4b_tealrobotsmall_lora_24gb",
        "4b",
        shape,
        tensor_parallel=1,
        devices=1,
        data_path=data_path,
        base_checkpoint=base_checkpoint,
        max_steps=max_steps,
        allow_random_init=allow_random_init,
        precision="bf16",
        recompute_layers=recompute_layers,
        peft=peft,
    )


# The names of cosmos-predict1's post-training guide (its experiment names) for the same runs.
base_4b_example_tealrobotsmall_tp1 = _alias(cosmos_ar_4b_tealrobotsmall_tp1, "base_4b_example_tealrobotsmall_tp1")
base_4b_example_tealrobot_tp4 = _alias(cosmos_ar_4b_tealrobot_tp4, "base_4b_example_tealrobot_tp4")
# name -> (default resolution, factory): what the tests check every grid against.
GPU_RECIPES = {
    "cosmos_ar_4b_tealrobotsmall_tp1": ("384x640", cosmos_ar_4b_tealrobotsmall_tp1),
    "cosmos_ar_4b_tealrobot_tp4": ("640x848", cosmos_ar_4b_tealrobot_tp4),
    "cosmos_ar_12b_tealrobot_tp8": ("640x848", cosmos_ar_12b_tealrobot_tp8),
    "base_4b_example_tealrobotsmall_tp1": ("384x640", base_4b_example_tealrobotsmall_tp1),
    "base_4b_example_tealrobot_tp4": ("640x848", base_4b_example_tealrobot_tp4),
    "cosmos_ar_4b_tealrobotsmall_lora_24gb": ("384x640", cosmos_ar_4b_tealrobotsmall_lora_24gb),
}


# ---- tiny model on CPU: the embedded demo and the CI workhorse ----
TINY_CLIP = (17, 64, 96)  # frames, height, width -> grid 3x4x6 = 72 tokens


def tiny_cpu_recipe(
    name: str = "cosmos_ar_tiny_cpu",
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 30,
    devices: int = 1,
    tensor_parallel: int = 1,
    save_every: int = 10,
    output_root: Optional[str] = None,
    lr: float = 3e-3,
    num_mock_clips: int = 4,
    global_batch_size: int = 2,
    fn=llm.finetune,
    allow_random_init: bool = True,
    precision: str = "32",
    peft: Optional[str] = None,
) -> run.Partial:
    """fp32, gloo, no gradient clipping (Megatron's clip asserts CUDA tensors), short warm-up, synchronous saves.
    Random initialisation is allowed by default: the tiny model has no released weights. ``precision="bf16"`` /
    ``"bf16-mixed"`` run the GPU modes on CPU (slower; the precision tests use them)."""
    shape = grid.latent_shape(*TINY_CLIP)
    bf16 = precision != "32"
    parts = dict(
        model=_model("tiny", shape, bf16=bf16),
        data=run.Config(
            CosmosVideoDataModule,
            path=data_path,
            latent_shape=shape,
            micro_batch_size=1,
            global_batch_size=global_batch_size,
            num_workers=0,
            pin_memory=False,
            num_mock_clips=num_mock_clips,
        ),
        trainer=_common.trainer(
            devices=devices,
            tensor_parallel=tensor_parallel,
            max_steps=max_steps,
            accelerator="cpu",
            precision=precision,
            save_every=save_every,
            keep_last=2,
            ckpt_async_save=False,
            val_check_interval=save_every,
        ),
        optim=_common.optimizer(lr=lr, min_lr=lr / 10, warmup_steps=2, max_steps=max_steps, clip_grad=0.0, bf16=bf16),
        log=_common.logger(name, output_root),
        resume=_common.resume(base_checkpoint, allow_random_init=allow_random_init),
    )
    return _entrypoint(fn, parts, peft)


@run.cli.factory(target=llm.finetune, name="cosmos_ar_tiny_cpu")
def cosmos_ar_tiny_cpu(
    data_path: Optional[str] = None,
    base_checkpoint: Optional[str] = None,
    max_steps: int = 30,
    peft: Optional[str] = None,
) -> run.Partial:
    """The tiny Cosmos AR model on CPU (mock clips unless data_path is given)."""
    return tiny_cpu_recipe(data_path=data_path, base_checkpoint=base_checkpoint, max_steps=max_steps, peft=peft)


@run.cli.factory(target=llm.pretrain, name="cosmos_ar_tiny_cpu")
def cosmos_ar_tiny_cpu_pretrain(data_path: Optional[str] = None, max_steps: int = 30) -> run.Partial:
    """From-scratch training of the tiny model on CPU."""
    return tiny_cpu_recipe(data_path=data_path, max_steps=max_steps, fn=llm.pretrain)
