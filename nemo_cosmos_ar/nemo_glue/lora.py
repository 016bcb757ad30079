"""LoRA for Cosmos AR through NeMo 2's PEFT (NeMo glue).

``CosmosLoRA`` is NeMo's ``llm.peft.LoRA`` with the Cosmos defaults and one fix. NeMo's ``LoRA.transform`` asks
``m.__class__ == te.Linear`` of every matched module that is not an ``nn.Linear``; that raises when
TransformerEngine is absent (CPU, and the H200 machines this project benchmarks on). There the matched Megatron
``ColumnParallelLinear``/``RowParallelLinear`` are wrapped here, with NeMo's own ``ParallelLinearAdapter`` and
``LoRALinear``, exactly as NeMo wraps them when TE is importable; with TE the parent does everything. So the
adapters are NeMo's in every respect:

* their TP sharding: A is split like the base layer's input or output, B like its output;
* their checkpoint keys: ``<linear>.adapter.linear_in/linear_out.weight``;
* NeMo's adapter-only checkpoints (``WrappedAdapterIO``): only the trainable tensors and their optimizer state,
  plus ``weights/adapter_metadata.json`` pointing to the base checkpoint.

Defaults (all overridable: ``peft.dim=16 peft.alpha=16 peft.dropout=0.05 peft.target_modules=[linear_qkv]``):

* ``target_modules``: all four linears of every layer (attention QKV and output projection, MLP fc1 and fc2).
  Post-training moves a video model to a new scene distribution (one robot's camera, a driving rig), which is more
  than a new output style. Adapting only the attention (LoRA's choice for GPT-3) would leave the MLPs frozen, two
  thirds of each layer's weights. Adapting every linear is what lets LoRA track full fine-tuning (QLoRA's finding).
* ``dim`` (the rank) 32: 35.7 M adapter parameters on the 4B, 0.9 % of its 4.0 B weights (71 MB in bf16), and 94.4 M
  on the 12B (0.8 %). That keeps adapter checkpoints and optimizer state negligible and leaves room for a domain shift.
* ``alpha`` 32: the update is scaled by alpha/dim, 1 at the default rank. Keep alpha fixed when you change the
  rank: the scale then follows 1/rank and the same learning rate stays usable (LoRA paper, section 4.1).
* ``dropout`` 0.0: the base model was trained without dropout (its hidden and attention dropout are 0). Add
  ``peft.dropout=0.05`` against over-fitting a few hundred clips.

A is initialised xavier-normal and B zero (NeMo's defaults), so step 0 of a LoRA run is the base model exactly.

Activation recompute (the 24 GB recipe): Megatron recomputes layers through a reentrant checkpoint function, which
runs the layers' forward under ``no_grad`` and builds their graph only in the backward, and only if one of its
inputs requires grad. With the base frozen the embedding output does not, so the recomputed layers' adapters would
get no gradient at all (a silent half-trained run, or Megatron DDP's "Communication call has not been issued" at the
first step). ``require_decoder_input_grad`` makes the decoder input require grad whenever recompute is on.
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List

import torch
from megatron.core.models.common.embeddings.language_model_embedding import LanguageModelEmbedding
from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear
from nemo.collections.llm.peft import lora as nemo_lora
from nemo.collections.llm.peft.utils import ParallelLinearAdapter
from nemo.lightning import io
from nemo.lightning.ckpt_utils import ADAPTER_META_FILENAME, ckpt_to_context_subdir
from nemo.lightning.io.pl import ckpt_to_weights_subdir
from torch import nn

from nemo_cosmos_ar.conversion import lora as lora_math
from nemo_cosmos_ar.conversion.architecture import same_shapes
from nemo_cosmos_ar.conversion.native_io import ConversionError
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.nemo_glue.callbacks import CosmosARMetrics

TARGET_MODULES = ("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2")
DEFAULT_DIM, DEFAULT_ALPHA, DEFAULT_DROPOUT = 32, 32, 0.0
# Where each target sits in a layer, as NeMo's module walk names it (the prefix target patterns are matched with).
_PARENT = {"linear_qkv": "self_attention", "linear_proj": "self_attention", "linear_fc1": "mlp", "linear_fc2": "mlp"}


def check_lora(dim, alpha, dropout, target_modules, tp: int = 1) -> None:
    """One-line ``ValueError`` for LoRA settings that cannot work (the CLI hook and the model build call it)."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"peft.dim={dim!r}: the LoRA rank must be an integer >= 1 (default {DEFAULT_DIM})")
    if dim % tp:
        raise ValueError(
            f"peft.dim={dim} is not divisible by the tensor-parallel size {tp}: the adapters are split "
            f"across TP ranks like their layers; use a multiple of {tp}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"peft.alpha={alpha!r}: must be a number > 0 (the update is scaled by alpha/dim)")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"peft.dropout={dropout!r}: must be a probability in [0, 1)")
    targets = list(target_modules or [])
    bad = [t for t in targets if not isinstance(t, str) or ("*" not in t and t not in TARGET_MODULES)]
    if not targets or bad:
        raise ValueError(
            f"peft.target_modules={targets!r}: name the linears to adapt, any of "
            f"{', '.join(TARGET_MODULES)} (or NeMo wildcard patterns such as '*.self_attention.linear_*')"
        )


@dataclass
class CosmosLoRA(nemo_lora.LoRA):
    """NeMo's ``LoRA`` with the Cosmos defaults (module docstring) that also runs without TransformerEngine."""

    target_modules: List[str] = field(default_factory=lambda: list(TARGET_MODULES))
    dim: int = DEFAULT_DIM
    alpha: int = DEFAULT_ALPHA
    dropout: float = DEFAULT_DROPOUT

    def __post_init__(self) -> None:
        check_lora(self.dim, self.alpha, self.dropout, self.target_modules)

    def __call__(self, model: nn.Module) -> nn.Module:
        model = super().__call__(model)
        require_decoder_input_grad(model)
        layer_re = re.compile(r"decoder\.layers\.(\d+)\.(?:self_attention|mlp)\.(linear_\w+)$")
        layers, adapted = set(), {}
        for name, module in model.named_modules():
            if m := layer_re.search(name):
                layers.add(int(m[1]))
                if isinstance(module, nemo_lora.LoRALinear):
                    adapted.setdefault(m[2], set()).add(int(m[1]))
        problem = partial_layers(self.target_modules, adapted, len(layers))
        if problem:
            raise ValueError(problem)
        return model

    def transform(self, m: nn.Module, name=None, prefix=None):
        if nemo_lora.HAVE_TE or isinstance(m, nn.Linear):
            return super().transform(m, name=name, prefix=prefix)
        found = self.match(m, name, prefix)
        if found is None:
            return m
        full_name = found[1]
        if not isinstance(m, (ColumnParallelLinear, RowParallelLinear)):
            raise ValueError(
                f"LoRA target {full_name} is a {type(m).__name__}, not a linear layer; target_modules "
                f"must name linear layers ({', '.join(TARGET_MODULES)})"
            )
        # What NeMo's get_adapter_attributes_from_linear answers for Megatron's own linears (it cannot be called
        # without TE: its TE class placeholders break its isinstance checks). input_size/output_size are the full
        # (unsharded) sizes; the adapter shards itself.
        adapter = ParallelLinearAdapter(
            m.input_size,
            m.output_size,
            self.dim,
            base_linear_name=full_name,
            activation="identity",
            column_init_method=self.lora_A_init_method,
            row_init_method=self.lora_B_init_method,
            input_is_parallel=isinstance(m, RowParallelLinear),
            dropout=self.dropout,
            dropout_position=self.dropout_position,
            model_parallel_config=m.config,
            alpha=self.alpha,
            disable_sequence_parallel_comm=not m.config.sequence_parallel,
            base_linear_is_parallel=True,
        )
        return nemo_lora.LoRALinear(m, adapter)

    def adapted(self, cfg: CosmosARConfig) -> dict[str, tuple[int, int]]:
        """``decoder.layers.{i}.<parent>.<linear>`` -> (in, out) of every linear this LoRA adapts in ``cfg``'s
        model, decided by NeMo's own matcher with the names its module walk gives."""
        sizes = {
            "linear_qkv": (cfg.dim, cfg.q_width + 2 * cfg.kv_width),
            "linear_proj": (cfg.q_width, cfg.dim),
            "linear_fc1": (cfg.dim, 2 * cfg.ffn_hidden_size),
            "linear_fc2": (cfg.ffn_hidden_size, cfg.dim),
        }
        out = {}
        for i in range(cfg.n_layers):
            for name, parent in _PARENT.items():
                if self.match(None, name, f"module.decoder.layers.{i}.{parent}") is not None:
                    out[f"decoder.layers.{i}.{parent}.{name}"] = sizes[name]
        return out

    def num_adapter_params(self, cfg: CosmosARConfig) -> int:
        return sum(self.dim * (i + o) for i, o in self.adapted(cfg).values())

    def check_layers(self, cfg: CosmosARConfig) -> None:
        """``ValueError`` when the target patterns adapt a linear in some layers only (see ``partial_layers``)."""
        adapted = {}
        for name in self.adapted(cfg):
            layer, linear = int(name.split(".")[2]), name.rsplit(".", 1)[1]
            adapted.setdefault(linear, set()).add(layer)
        problem = partial_layers(self.target_modules, adapted, cfg.n_layers)
        if problem:
            raise ValueError(problem)


def _input_requires_grad(module: nn.Module, args, output):
    """Forward hook of the embedding (see ``require_decoder_input_grad``)."""
    recompute = getattr(module.config, "recompute_granularity", None) is not None
    if recompute and module.training and torch.is_grad_enabled() and not output.requires_grad:
        # A leaf here (nothing before it requires grad): its gradient stops at it, the frozen embedding gets none.
        output.requires_grad_(True)
    return output


def require_decoder_input_grad(model: nn.Module) -> None:
    """Make the embedding output (the decoder's input) require grad in training steps with activation recompute.

    Megatron's recompute (``tensor_parallel.checkpoint``, full or selective "mlp") is reentrant: a checkpointed
    block whose inputs all lack ``requires_grad`` is run under ``no_grad`` and left out of the backward, so the
    adapters inside it never get a gradient. A frozen base (any PEFT) leaves the embedding output without it; the
    hook sets it. Without recompute, in evaluation and under ``no_grad`` (inference, logits) nothing changes. The
    gradient then flows back to the embedding output and stops there: the same numbers, plus layer 0's input
    gradient. Idempotent (a transform applied twice registers one hook)."""
    for module in model.modules():
        if isinstance(module, LanguageModelEmbedding) and not getattr(module, "_cosmos_input_grad_hook", None):
            module._cosmos_input_grad_hook = module.register_forward_hook(_input_requires_grad)


def partial_layers(targets, adapted: dict, n_layers: int):
    """The message for target patterns that adapt a linear in some layers but not all, else None. Megatron saves
    each weight stacked over the layers (``module.decoder.layers.<name>`` [n_layers, ...]), and a checkpoint of an
    adapter present in only some layers fails its sharding check at the first save."""
    for linear, layers in sorted(adapted.items()):
        if 0 < len(layers) < n_layers:
            return (
                f"peft.target_modules={list(targets)!r} adapts {linear} in layer(s) {sorted(layers)} of "
                f"{n_layers} only: checkpoints store each weight stacked over all layers, so adapt a linear in "
                f"every layer or in none (name it, e.g. {linear})"
            )
    return None


def lora_train_flops_per_token(cfg: CosmosARConfig, lora: CosmosLoRA, seq_length: int) -> float:
    """Model FLOPs per trained token of a LoRA run, counting only the work LoRA training has to do.

    Full post-training counts ``6·N`` for the weights (forward 2, input gradient 2, weight gradient 2 per weight,
    ``CosmosARConfig.train_flops_per_token``). A frozen weight needs no weight gradient: 4 per frozen weight, N
    without the input embedding as before (the output layer's input gradient is needed by the last layer's
    adapters). The adapters are trained weights: 6 each. Causal attention has no weights and its backward is the
    same as in full training: ``6·L·S·(heads·head_dim)``. Activation recompute is not counted (model FLOPs)."""
    frozen = cfg.num_params(include_embedding=False)
    attention = cfg.train_flops_per_token(seq_length) - 6.0 * frozen
    return 4.0 * frozen + 6.0 * lora.num_adapter_params(cfg) + attention


class CosmosLoRAMetrics(CosmosARMetrics):
    """``CosmosARMetrics`` whose model TFLOP/s uses the LoRA count (``lora_train_flops_per_token``), taken at fit
    start from the run's ``CosmosLoRA`` (so ``peft.dim=...`` overrides are counted as set)."""

    def on_fit_start(self, trainer, pl_module) -> None:
        lora = next((cb for cb in trainer.callbacks if isinstance(cb, CosmosLoRA)), None)
        if not self.flops_per_token and lora is not None and hasattr(pl_module.config, "cosmos_config"):
            cfg = pl_module.config.cosmos_config()
            self.flops_per_token = lora_train_flops_per_token(cfg, lora, cfg.seq_length - 1)
        super().on_fit_start(trainer, pl_module)


# ---------------------------------------------------------------------------------------------------------------
# A LoRA run's checkpoint: adapters + the pointer to its base, read as the merged model (export)
# ---------------------------------------------------------------------------------------------------------------
_ADAPTER_KEY = re.compile(
    r"^module\.decoder\.layers\.(self_attention|mlp)\.(linear_\w+)\.adapter\.linear_(in|out)\.weight$"
)
RANDOM_BASE = (
    "{path} holds LoRA adapters of a run that started from random weights (allow_random_init, no base "
    "checkpoint), so there is no base model to {what}"
)


def is_lora_checkpoint(path: str | Path) -> bool:
    """A NeMo checkpoint written by a LoRA run: its weights hold only adapters, ``adapter_metadata.json`` names
    the base."""
    return (Path(ckpt_to_weights_subdir(Path(path), is_saving=False)) / ADAPTER_META_FILENAME).is_file()


class LoRACheckpointReader:
    """The merged weights of a LoRA run's checkpoint: its base checkpoint (the one recorded in
    ``adapter_metadata.json``, or ``base``) with every adapter folded in (``conversion.lora.merge``), as native
    tensors one layer at a time, like ``NeMoCheckpointReader`` (whose interface it has: ``config``,
    ``iter_native``). ``iter_adapters`` gives the adapters alone, under native names; with ``merge=False`` the base
    is only named, never opened (``--adapters-only``: it may live on another machine)."""

    def __init__(self, path: str | Path, base: str | Path | None = None, merge: bool = True) -> None:
        from nemo_cosmos_ar.nemo_glue.connectors import NeMoCheckpointReader

        self.path = Path(path)
        self.adapters = NeMoCheckpointReader(self.path)  # context + DCP metadata of the adapter checkpoint
        meta_path = Path(self.adapters.weights) / ADAPTER_META_FILENAME
        try:
            recorded = json.loads(meta_path.read_text()).get("model_ckpt_path")
        except (OSError, ValueError, AttributeError) as e:
            raise ConversionError(
                f"{meta_path} is unreadable ({type(e).__name__}); copy the checkpoint again"
            ) from None
        self.base_path = Path(base) if base else (Path(recorded) if recorded not in (None, "", "None") else None)
        self.keys: dict[str, dict[str, str]] = {}  # Megatron linear -> {"in"|"out": checkpoint key}
        self.parents: dict[str, str] = {}
        for key in self.adapters._md.state_dict_metadata:
            if m := _ADAPTER_KEY.match(key):
                self.keys.setdefault(m[2], {})[m[3]] = key
                self.parents[m[2]] = m[1]
        if not self.keys or any(len(v) != 2 for v in self.keys.values()):
            raise ConversionError(
                f"{self.adapters.weights} holds no complete LoRA adapters (found "
                f"{sorted(self.keys)}); is this a LoRA run's checkpoint?"
            )
        self.rank = int(self.adapters._md.state_dict_metadata[next(iter(self.keys.values()))["in"]].size[1])
        self.lora = self._settings()
        self.scale = self.lora.alpha / self.rank
        self.config, self.base = self.adapters.config, None
        if not merge:
            return
        if self.base_path is None:
            raise ConversionError(
                RANDOM_BASE.format(path=self.path, what="merge into; --adapters-only writes the adapters alone")
            )
        if not self.base_path.is_dir():
            where = "given with --base" if base else f"recorded in {meta_path}"
            raise ConversionError(
                f"the base checkpoint of {self.path}, {self.base_path} ({where}), does not exist; "
                "pass --base <the NeMo checkpoint the LoRA run started from>"
            )
        self.base = NeMoCheckpointReader(self.base_path)
        mine, self.config = self.config, self.base.config
        if not same_shapes(mine, self.config):
            raise ConversionError(
                f"{self.path} adapts a {mine.name!r} model ({mine.n_layers} layers, dim {mine.dim}) "
                f"but its base {self.base_path} is {self.config.name!r} ({self.config.n_layers} "
                f"layers, dim {self.config.dim}); pass the right --base"
            )

    def _settings(self) -> CosmosLoRA:
        """The run's ``CosmosLoRA`` (alpha, dropout) from its context; the rank is the stored one."""
        try:
            lora = io.load_context(ckpt_to_context_subdir(self.path), subpath="model.model_transform")
        except Exception as e:  # noqa: BLE001 -- fiddle/json/import errors all mean "unreadable context"
            raise ConversionError(
                f"{self.path}/context does not describe the run's LoRA ({type(e).__name__}); "
                "the checkpoint is damaged or was not written by nemo_cosmos_ar"
            ) from None
        if not hasattr(lora, "alpha"):
            raise ConversionError(
                f"{self.path}/context holds no LoRA settings (model.model_transform is {type(lora).__name__})"
            )
        return lora

    def layer_adapters(self, i: int) -> dict[str, tuple]:
        """Layer i's adapters: Megatron linear -> (A [r, in], B [out, r]), full (TP-independent) tensors."""
        md = self.adapters._md.state_dict_metadata
        req = {
            f"{lin}.{io_}": (key, (i,) + (0,) * (len(md[key].size) - 1), (1, *md[key].size[1:]))
            for lin, keys in self.keys.items()
            for io_, key in keys.items()
        }
        got = {k: t[0] for k, t in self.adapters._read(req).items()}
        return {lin: (got[f"{lin}.in"], got[f"{lin}.out"]) for lin in self.keys}

    def _merge(self, i: int, layer: dict) -> dict:
        for lin, (a, b) in self.layer_adapters(i).items():
            key = f"decoder.layers.0.{self.parents[lin]}.{lin}.weight"
            shape = [b.shape[0], a.shape[1]]
            if shape != list(layer[key].shape):
                raise ConversionError(
                    f"{self.path}: the {lin} adapter of layer {i} is {shape} but the base weight is "
                    f"{list(layer[key].shape)}; pass the right --base"
                )
            layer[key] = lora_math.merge(layer[key], a, b, self.scale)
        return layer

    def iter_native(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The merged model as native tensors (fp32 where merged), one layer at a time."""
        return self.base.iter_native(layer_hook=self._merge)

    def adapter_layout(self) -> dict[str, tuple[int, ...]]:
        return lora_math.native_shapes(self.config, self.rank, self.keys)

    def iter_adapters(self) -> Iterator[tuple[str, torch.Tensor]]:
        layers = ((i, self.layer_adapters(i)) for i in range(self.config.n_layers))
        return lora_math.iter_native_adapters(layers, self.config)


def open_checkpoint(path: str | Path, base: str | Path | None = None):
    """``NeMoCheckpointReader`` for a full run's checkpoint, ``LoRACheckpointReader`` (merged) for a LoRA run's."""
    from nemo_cosmos_ar.nemo_glue.connectors import NeMoCheckpointReader

    if is_lora_checkpoint(path):
        return LoRACheckpointReader(path, base)
    if base:
        raise ConversionError(f"--base applies to LoRA checkpoints only; {path} holds all weights of its model")
    return NeMoCheckpointReader(path)


def export_adapters(
    path: str | Path,
    output: str | Path,
    *,
    base: str | Path | None = None,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """``cosmos-ar convert export --adapters-only``: the adapters alone, in the PEFT layout of
    ``conversion/lora.py``; the base is only named (``base_model_name_or_path``), never read."""
    if not is_lora_checkpoint(path):
        raise ConversionError(
            f"{path} is not a LoRA run's checkpoint (no weights/{ADAPTER_META_FILENAME}); "
            "--adapters-only applies to checkpoints of peft='lora' runs"
        )
    reader = LoRACheckpointReader(path, base, merge=False)
    config = lora_math.adapter_config(
        reader.config,
        reader.rank,
        reader.lora.alpha,
        reader.lora.dropout,
        reader.keys,
        str(reader.base_path or ""),
        dtype,
    )
    return lora_math.write_adapters(
        output, reader.iter_adapters(), config, reader.adapter_layout(), overwrite=overwrite, dtype=dtype
    )
