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
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

from dataclasses import dataclass, field
from typing import List

from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear
from nemo.collections.llm.peft import lora as nemo_lora
from nemo.collections.llm.peft.utils import ParallelLinearAdapter
from torch import nn

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
        raise ValueError(f"peft.dim={dim} is not divisible by the tensor-parallel size {tp}: the adapters are split "
                         f"across TP ranks like their layers; use a multiple of {tp}")  # fmt: skip
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"peft.alpha={alpha!r}: must be a number > 0 (the update is scaled by alpha/dim)")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"peft.dropout={dropout!r}: must be a probability in [0, 1)")
    targets = list(target_modules or [])
    bad = [t for t in targets if not isinstance(t, str) or ("*" not in t and t not in TARGET_MODULES)]
    if not targets or bad:
        raise ValueError(f"peft.target_modules={targets!r}: name the linears to adapt, any of "
                         f"{', '.join(TARGET_MODULES)} (or NeMo wildcard patterns such as '*.layers.0.*.linear_qkv')")


@dataclass
class CosmosLoRA(nemo_lora.LoRA):
    """NeMo's ``LoRA`` with the Cosmos defaults (module docstring) that also runs without TransformerEngine."""

    target_modules: List[str] = field(default_factory=lambda: list(TARGET_MODULES))
    dim: int = DEFAULT_DIM
    alpha: int = DEFAULT_ALPHA
    dropout: float = DEFAULT_DROPOUT

    def __post_init__(self) -> None:
        check_lora(self.dim, self.alpha, self.dropout, self.target_modules)

    def transform(self, m: nn.Module, name=None, prefix=None):
        if nemo_lora.HAVE_TE or isinstance(m, nn.Linear):
            return super().transform(m, name=name, prefix=prefix)
        found = self.match(m, name, prefix)
        if found is None:
            return m
        full_name = found[1]
        if not isinstance(m, (ColumnParallelLinear, RowParallelLinear)):
            raise ValueError(f"LoRA target {full_name} is a {type(m).__name__}, not a linear layer; target_modules "
                             f"must name linear layers ({', '.join(TARGET_MODULES)})")  # fmt: skip
        # What NeMo's get_adapter_attributes_from_linear answers for Megatron's own linears (it cannot be called
        # without TE: its TE class placeholders break its isinstance checks). input_size/output_size are the full
        # (unsharded) sizes; the adapter shards itself.
        adapter = ParallelLinearAdapter(
            m.input_size, m.output_size, self.dim, base_linear_name=full_name, activation="identity",
            column_init_method=self.lora_A_init_method, row_init_method=self.lora_B_init_method,
            input_is_parallel=isinstance(m, RowParallelLinear), dropout=self.dropout,
            dropout_position=self.dropout_position, model_parallel_config=m.config, alpha=self.alpha,
            disable_sequence_parallel_comm=not m.config.sequence_parallel, base_linear_is_parallel=True,
        )  # fmt: skip
        return nemo_lora.LoRALinear(m, adapter)

    def adapted(self, cfg: CosmosARConfig) -> dict[str, tuple[int, int]]:
        """``decoder.layers.{i}.<parent>.<linear>`` -> (in, out) of every linear this LoRA adapts in ``cfg``'s
        model, decided by NeMo's own matcher with the names its module walk gives."""
        sizes = {"linear_qkv": (cfg.dim, cfg.q_width + 2 * cfg.kv_width), "linear_proj": (cfg.q_width, cfg.dim),
                 "linear_fc1": (cfg.dim, 2 * cfg.ffn_hidden_size), "linear_fc2": (cfg.ffn_hidden_size, cfg.dim)}
        out = {}
        for i in range(cfg.n_layers):
            for name, parent in _PARENT.items():
                if self.match(None, name, f"module.decoder.layers.{i}.{parent}") is not None:
                    out[f"decoder.layers.{i}.{parent}.{name}"] = sizes[name]
        return out

    def num_adapter_params(self, cfg: CosmosARConfig) -> int:
        return sum(self.dim * (i + o) for i, o in self.adapted(cfg).values())


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
