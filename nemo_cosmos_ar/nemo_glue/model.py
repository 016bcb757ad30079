"""NeMo 2 model and config classes for Cosmos-Predict1 AR.

``CosmosARNeMoConfig`` is a NeMo ``GPTConfig`` whose architecture defaults are ``model.mcore.ARCHITECTURE`` (the
same settings the plain Megatron-Core builder uses), plus the Cosmos fields (latent grid, YaRN, z-loss).
``configure_model`` builds the standard Megatron ``GPTModel`` and swaps in the 3D RoPE.

The sized subclasses ``CosmosARConfigTiny/4B/12B`` are thin aliases: subclasses whose field defaults are generated
from the preset table (``model/presets.py``), nothing typed here. Recipes and checkpoints (``io.json`` names the
class and only the arguments given to it) refer to them: keep their names and this module path.

There is no text tokenizer: the data module yields DV8x16x16 token ids directly.
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from nemo.collections.llm.gpt.model.base import GPTConfig, GPTModel
from nemo.lightning.megatron_parallel import MegatronLossReduction

from nemo_cosmos_ar.model.config import VIDEO_VOCAB_SIZE, CosmosARConfig
from nemo_cosmos_ar.model.loss import Z_LOSS_COEFF, token_terms, token_terms_reference
from nemo_cosmos_ar.model.mcore import ARCHITECTURE, install_rope_3d, transformer_config_kwargs
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.tokenizer import grid

# CosmosARConfig's own defaults (grid, RoPE theta, YaRN, norm eps): the NeMo config's Cosmos fields default to them.
_COSMOS_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(CosmosARConfig) if f.default is not dataclasses.MISSING
}


def cosmos_transformer_layer_spec(config: "CosmosARNeMoConfig"):
    from nemo_cosmos_ar.model.layer_spec import cosmos_layer_spec

    return cosmos_layer_spec(config.layer_spec_name)


def cosmos_data_step(dataloader_iter) -> dict[str, torch.Tensor]:
    """Next micro-batch, moved to this rank's device. Keys: tokens, labels, loss_mask, position_ids ``[B, S]``."""
    batch = next(dataloader_iter)
    if isinstance(batch, tuple) and len(batch) == 3:  # (batch, batch_idx, dataloader_idx)
        batch = batch[0]
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    keys = ("tokens", "labels", "loss_mask", "position_ids")
    return {k: batch[k].to(device, non_blocking=True) for k in keys if k in batch}


def cosmos_forward_step(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Vocab-parallel logits ``[B, S, V/tp]``; the loss is computed by ``CosmosARLossReduction``."""
    return model(input_ids=batch["tokens"], position_ids=batch["position_ids"], attention_mask=None)


@dataclass
class _CosmosARFields(GPTConfig):
    """The Cosmos fields and methods of ``CosmosARNeMoConfig`` (which adds the architecture defaults below)."""

    # -- Cosmos fields (meaning: see ``CosmosARConfig``) --
    latent_shape: tuple = _COSMOS_DEFAULTS["latent_shape"]
    rope_theta: float = _COSMOS_DEFAULTS["rope_theta"]
    apply_yarn: bool = _COSMOS_DEFAULTS["apply_yarn"]
    yarn_scale: float = _COSMOS_DEFAULTS["yarn_scale"]
    yarn_beta_fast: float = _COSMOS_DEFAULTS["yarn_beta_fast"]
    yarn_beta_slow: float = _COSMOS_DEFAULTS["yarn_beta_slow"]
    original_latent_shape: Optional[tuple] = _COSMOS_DEFAULTS["original_latent_shape"]
    z_loss_coeff: float = Z_LOSS_COEFF
    # "chunked": fp32 softmax a chunk of rows at a time, never the whole fp32 logits (model/loss.py); "reference":
    # plain autograd over fp32 copies (kept to measure the difference: bench/bench_recipe.py)
    loss_impl: str = "chunked"
    layer_spec_name: Optional[str] = None  # None: TE when available, else local + torch SDPA
    preset: str = "4b"

    # -- GPTConfig fields of the Cosmos model that are not TransformerConfig architecture --
    layernorm_epsilon: float = _COSMOS_DEFAULTS["norm_eps"]
    position_embedding_type: str = "rope"
    share_embeddings_and_output_weights: bool = False
    vocab_size: Optional[int] = VIDEO_VOCAB_SIZE
    make_vocab_size_divisible_by: int = 64  # the 64,000 codes = 64·1000: no padding at TP 1..8
    transformer_layer_spec: Callable = cosmos_transformer_layer_spec
    forward_step_fn: Callable = cosmos_forward_step
    data_step_fn: Callable = cosmos_data_step

    def __post_init__(self) -> None:
        self.latent_shape = tuple(self.latent_shape)
        # The model sees clip[:-1]: T·H·W − 1 tokens; the RoPE table covers the whole grid.
        self.seq_length = grid.tokens_per_clip(self.latent_shape)
        self.max_position_embeddings = self.seq_length
        self.rotary_base = int(self.rope_theta)
        if self.apply_rope_fusion:  # Megatron checks for a fused RoPE when the config is built
            from nemo_cosmos_ar.model import fused_rope

            fused_rope.install()
        super().__post_init__()

    @classmethod
    def from_cosmos(cls, cfg: CosmosARConfig, **overrides) -> "CosmosARNeMoConfig":
        kw = nemo_fields(cfg)
        kw.update(overrides)
        return cls(**kw)

    def cosmos_config(self) -> CosmosARConfig:
        """The plain architecture config (used by RoPE, conversion and inference)."""
        return CosmosARConfig(
            name=self.preset,
            n_layers=self.num_layers,
            dim=self.hidden_size,
            n_heads=self.num_attention_heads,
            n_kv_heads=self.num_query_groups or self.num_attention_heads,
            head_dim=self.kv_channels,
            ffn_hidden_size=self.ffn_hidden_size,
            vocab_size=self.vocab_size,
            norm_eps=self.layernorm_epsilon,
            rope_theta=self.rope_theta,
            latent_shape=tuple(self.latent_shape),
            apply_yarn=self.apply_yarn,
            yarn_scale=self.yarn_scale,
            yarn_beta_fast=self.yarn_beta_fast,
            yarn_beta_slow=self.yarn_beta_slow,
            original_latent_shape=self.original_latent_shape,
        )

    def configure_model(self, tokenizer, pre_process=None, post_process=None, vp_stage=None):
        from nemo_cosmos_ar.model import frozen_linear

        frozen_linear.install()  # frozen weights (LoRA's base, the output layer) then get a 2-D dgrad GEMM
        if self.gradient_accumulation_fusion:
            from nemo_cosmos_ar.model import fused_wgrad

            fused_wgrad.install()
        model = super().configure_model(
            tokenizer, pre_process=pre_process, post_process=post_process, vp_stage=vp_stage
        )
        install_rope_3d(model, self.cosmos_config())
        return model


def nemo_fields(cfg: CosmosARConfig) -> dict:
    """``CosmosARNeMoConfig`` arguments that describe ``cfg`` (the inverse of ``cosmos_config``)."""
    return dict(
        transformer_config_kwargs(cfg),
        latent_shape=tuple(cfg.latent_shape),
        rope_theta=cfg.rope_theta,
        apply_yarn=cfg.apply_yarn,
        yarn_scale=cfg.yarn_scale,
        yarn_beta_fast=cfg.yarn_beta_fast,
        yarn_beta_slow=cfg.yarn_beta_slow,
        original_latent_shape=cfg.original_latent_shape,
        vocab_size=cfg.vocab_size,
        preset=cfg.name,
    )


def _with_defaults(name: str, base: type, defaults: dict, doc: str) -> type:
    """A dataclass subclass of ``base`` called ``name`` (importable from this module under that name) whose fields
    default to ``defaults``. NeMo-Run reads the real field annotations, which are the base's."""
    types = {f.name: f.type for f in dataclasses.fields(base)}
    fields = [(k, types[k], dataclasses.field(default=v)) for k, v in defaults.items()]
    return dataclasses.make_dataclass(name, fields, bases=(base,), namespace={"__doc__": doc, "__module__": __name__})


CosmosARNeMoConfig = _with_defaults(
    "CosmosARNeMoConfig",
    _CosmosARFields,
    ARCHITECTURE,
    "NeMo config of a Cosmos AR base model; see ``CosmosARConfig`` for the meaning of the Cosmos fields.",
)


def _sized(name: str, preset: str) -> type:
    doc = f"The ``{preset}`` preset of ``model/presets.py`` as a NeMo config (its defaults)."
    return _with_defaults(name, CosmosARNeMoConfig, nemo_fields(get_preset(preset)), doc)


# Thin aliases of the presets; the names are what io.json files record.
CosmosARConfigTiny = _sized("CosmosARConfigTiny", "tiny")
CosmosARConfig4B = _sized("CosmosARConfig4B", "4b")
CosmosARConfig12B = _sized("CosmosARConfig12B", "12b")

NEMO_CONFIGS = {"tiny": CosmosARConfigTiny, "4b": CosmosARConfig4B, "12b": CosmosARConfig12B}


class CosmosARLossReduction(MegatronLossReduction):
    """cosmos-predict1's loss (masked CE + z-loss) in Megatron's per-token form.

    ``forward`` returns ``loss_sum`` with ``loss_sum / num_tokens = CE_mean + z·mean(lse²)``, so Megatron's
    schedule (which divides by ``num_tokens`` and the number of micro-batches) trains on exactly that loss.
    ``reduce`` gives the global-batch loss for logging and keeps CE, z-loss and accuracy in ``last_metrics``.
    """

    def __init__(
        self, z_loss_coeff: float = Z_LOSS_COEFF, validation_step: bool = False, loss_impl: str = "chunked"
    ) -> None:
        super().__init__()
        if loss_impl not in ("chunked", "reference"):
            raise ValueError(f"loss_impl={loss_impl!r}: use 'chunked' or 'reference'")
        self.z_loss_coeff = z_loss_coeff
        self.terms = token_terms if loss_impl == "chunked" else token_terms_reference
        self.validation_step = validation_step
        self.last_metrics: dict[str, float] = {}

    def forward(self, batch, forward_out):
        terms = self.terms(forward_out, batch["labels"])
        mask = batch["loss_mask"].float()
        n = mask.sum()
        ce_sum = (terms.ce * mask).sum()
        z_mean = terms.lse.pow(2).mean()
        loss_sum = ce_sum + self.z_loss_coeff * z_mean * n
        stats = torch.stack([loss_sum.detach(), ce_sum.detach(), z_mean.detach() * n, (terms.correct * mask).sum(), n])
        return loss_sum, n.detach().to(torch.int), {"loss_sum_and_ub_size": stats[[0, 4]], "stats": stats}

    def reduce(self, losses_reduced_per_micro_batch) -> torch.Tensor:
        from megatron.core import parallel_state

        if not losses_reduced_per_micro_batch:
            return torch.tensor(0.0)
        total = torch.stack([x["stats"] for x in losses_reduced_per_micro_batch]).sum(0).float()
        torch.distributed.all_reduce(total, group=parallel_state.get_data_parallel_group(with_context_parallel=True))
        n = total[4].clamp(min=1)
        self.last_metrics = {
            "ce": (total[1] / n).item(),
            "z_loss": (total[2] / n).item(),
            "accuracy": (total[3] / n).item(),
        }
        return total[0] / n


class CosmosARModel(GPTModel):
    """NeMo ``GPTModel`` for Cosmos AR: no text tokenizer, the Cosmos loss."""

    def __init__(self, config: Optional[CosmosARNeMoConfig] = None, optim=None, tokenizer=None, model_transform=None):
        super().__init__(
            config or CosmosARConfig4B(), optim=optim, tokenizer=tokenizer, model_transform=model_transform
        )

    @property
    def training_loss_reduction(self) -> CosmosARLossReduction:
        if not getattr(self, "_cosmos_train_loss", None):
            self._cosmos_train_loss = CosmosARLossReduction(self.config.z_loss_coeff, loss_impl=self.config.loss_impl)
        return self._cosmos_train_loss

    @property
    def validation_loss_reduction(self) -> CosmosARLossReduction:
        if not getattr(self, "_cosmos_val_loss", None):
            self._cosmos_val_loss = CosmosARLossReduction(
                self.config.z_loss_coeff, validation_step=True, loss_impl=self.config.loss_impl
            )
        return self._cosmos_val_loss
