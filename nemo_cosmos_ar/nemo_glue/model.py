"""NeMo 2 model and config classes for Cosmos-Predict1 AR.

``CosmosARNeMoConfig`` is a NeMo ``GPTConfig`` whose architecture fields come from ``model.mcore`` (the same
translation the plain Megatron-Core builder uses), plus the Cosmos fields (latent grid, YaRN, z-loss).
``configure_model`` builds the standard Megatron ``GPTModel`` and swaps in the 3D RoPE. The sized subclasses
(``CosmosARConfigTiny/4B/12B``) are what recipes and checkpoints (``io.json``) refer to: keep their import paths.

There is no text tokenizer: the data module yields DV8x16x16 token ids directly.
"""

# No `from __future__ import annotations`: nemo-run parses `a.b=c` CLI overrides from the real annotations.

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from nemo.collections.llm.gpt.model.base import GPTConfig, GPTModel
from nemo.lightning.megatron_parallel import MegatronLossReduction

from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.loss import Z_LOSS_COEFF, token_terms, token_terms_reference
from nemo_cosmos_ar.model.mcore import install_rope_3d, transformer_config_kwargs


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
class CosmosARNeMoConfig(GPTConfig):
    """NeMo config of a Cosmos AR base model; see ``CosmosARConfig`` for the meaning of the Cosmos fields."""

    # -- Cosmos fields --
    latent_shape: tuple = (5, 40, 64)
    rope_theta: float = 500000.0
    apply_yarn: bool = False
    yarn_scale: float = 1.0
    yarn_beta_fast: float = 4.0
    yarn_beta_slow: float = 1.0
    original_latent_shape: Optional[tuple] = None
    z_loss_coeff: float = Z_LOSS_COEFF
    # "chunked": fp32 softmax a chunk of rows at a time, never the whole fp32 logits (model/loss.py); "reference":
    # plain autograd over fp32 copies (kept to measure the difference: bench/bench_recipe.py)
    loss_impl: str = "chunked"
    layer_spec_name: Optional[str] = None  # None: TE when available, else local + torch SDPA
    preset: str = "4b"

    # -- GPTConfig fields fixed by the Cosmos architecture --
    normalization: str = "RMSNorm"
    layernorm_epsilon: float = 1e-5
    qk_layernorm: bool = True
    add_bias_linear: bool = False
    add_qkv_bias: bool = False
    gated_linear_unit: bool = True
    activation_func: Callable = F.silu
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    position_embedding_type: str = "rope"
    share_embeddings_and_output_weights: bool = False
    vocab_size: Optional[int] = 64000
    make_vocab_size_divisible_by: int = 64  # 64000 = 64·1000: no padding at TP 1..8
    masked_softmax_fusion: bool = False
    bias_activation_fusion: bool = False
    bias_dropout_fusion: bool = False
    apply_rope_fusion: bool = False
    persist_layer_norm: bool = False
    gradient_accumulation_fusion: bool = False
    cross_entropy_loss_fusion: bool = False
    init_method_std: float = 0.02
    transformer_layer_spec: Callable = cosmos_transformer_layer_spec
    forward_step_fn: Callable = cosmos_forward_step
    data_step_fn: Callable = cosmos_data_step

    def __post_init__(self) -> None:
        self.latent_shape = tuple(self.latent_shape)
        t, h, w = self.latent_shape
        # The model sees clip[:-1]: T·H·W − 1 tokens; the RoPE table covers the whole grid.
        self.seq_length = t * h * w
        self.max_position_embeddings = self.seq_length
        self.rotary_base = int(self.rope_theta)
        if self.apply_rope_fusion:  # Megatron checks for a fused RoPE when the config is built
            from nemo_cosmos_ar.model import fused_rope

            fused_rope.install()
        super().__post_init__()

    @classmethod
    def from_cosmos(cls, cfg: CosmosARConfig, **overrides) -> "CosmosARNeMoConfig":
        kw = transformer_config_kwargs(cfg)
        kw.update(
            latent_shape=tuple(cfg.latent_shape), rope_theta=cfg.rope_theta, apply_yarn=cfg.apply_yarn,
            yarn_scale=cfg.yarn_scale, yarn_beta_fast=cfg.yarn_beta_fast, yarn_beta_slow=cfg.yarn_beta_slow,
            original_latent_shape=cfg.original_latent_shape, vocab_size=cfg.vocab_size, preset=cfg.name,
        )  # fmt: skip
        kw.update(overrides)
        return cls(**kw)

    def cosmos_config(self) -> CosmosARConfig:
        """The plain architecture config (used by RoPE, conversion and inference)."""
        return CosmosARConfig(
            name=self.preset, n_layers=self.num_layers, dim=self.hidden_size, n_heads=self.num_attention_heads,
            n_kv_heads=self.num_query_groups or self.num_attention_heads, head_dim=self.kv_channels,
            ffn_hidden_size=self.ffn_hidden_size, vocab_size=self.vocab_size, norm_eps=self.layernorm_epsilon,
            rope_theta=self.rope_theta, latent_shape=tuple(self.latent_shape), apply_yarn=self.apply_yarn,
            yarn_scale=self.yarn_scale, yarn_beta_fast=self.yarn_beta_fast, yarn_beta_slow=self.yarn_beta_slow,
            original_latent_shape=self.original_latent_shape,
        )  # fmt: skip

    def configure_model(self, tokenizer, pre_process=None, post_process=None, vp_stage=None):
        if self.gradient_accumulation_fusion:
            from nemo_cosmos_ar.model import fused_wgrad

            fused_wgrad.install()
        model = super().configure_model(tokenizer, pre_process=pre_process, post_process=post_process, vp_stage=vp_stage)
        install_rope_3d(model, self.cosmos_config())
        return model


@dataclass
class CosmosARConfigTiny(CosmosARNeMoConfig):
    """2 layers, hidden 64, GQA 4/2, head dim 32, YaRN on: the CPU test and demo model."""

    num_layers: int = 2
    hidden_size: int = 64
    ffn_hidden_size: int = 160
    num_attention_heads: int = 4
    num_query_groups: int = 2
    kv_channels: int = 32
    latent_shape: tuple = (3, 4, 6)
    apply_yarn: bool = True
    yarn_scale: float = 2.0
    original_latent_shape: Optional[tuple] = (2, 4, 6)
    preset: str = "tiny"


@dataclass
class CosmosARConfig4B(CosmosARNeMoConfig):
    """Cosmos-Predict1-4B: 16 layers, hidden 4096, FFN 14336, 32 heads / 8 KV groups."""

    num_layers: int = 16
    hidden_size: int = 4096
    ffn_hidden_size: int = 14336
    num_attention_heads: int = 32
    num_query_groups: int = 8
    kv_channels: int = 128
    preset: str = "4b"


@dataclass
class CosmosARConfig12B(CosmosARNeMoConfig):
    """Cosmos-Predict1-12B: 40 layers, hidden 5120, head dim 128 (q width 4096), YaRN over the [3,40,64] grid."""

    num_layers: int = 40
    hidden_size: int = 5120
    ffn_hidden_size: int = 14336
    num_attention_heads: int = 32
    num_query_groups: int = 8
    kv_channels: int = 128
    apply_yarn: bool = True
    yarn_scale: float = 2.0
    original_latent_shape: Optional[tuple] = (3, 40, 64)
    preset: str = "12b"


NEMO_CONFIGS = {"tiny": CosmosARConfigTiny, "4b": CosmosARConfig4B, "12b": CosmosARConfig12B}


class CosmosARLossReduction(MegatronLossReduction):
    """cosmos-predict1's loss (masked CE + z-loss) in Megatron's per-token form.

    ``forward`` returns ``loss_sum`` with ``loss_sum / num_tokens = CE_mean + z·mean(lse²)``, so Megatron's
    schedule (which divides by ``num_tokens`` and the number of micro-batches) trains on exactly that loss.
    ``reduce`` gives the global-batch loss for logging and keeps CE, z-loss and accuracy in ``last_metrics``.
    """

    def __init__(self, z_loss_coeff: float = Z_LOSS_COEFF, validation_step: bool = False,
                 loss_impl: str = "chunked") -> None:  # fmt: skip
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
        self.last_metrics = {"ce": (total[1] / n).item(), "z_loss": (total[2] / n).item(), "accuracy": (total[3] / n).item()}
        return total[0] / n


class CosmosARModel(GPTModel):
    """NeMo ``GPTModel`` for Cosmos AR: no text tokenizer, the Cosmos loss."""

    def __init__(self, config: Optional[CosmosARNeMoConfig] = None, optim=None, tokenizer=None, model_transform=None):
        super().__init__(config or CosmosARConfig4B(), optim=optim, tokenizer=tokenizer, model_transform=model_transform)

    @property
    def training_loss_reduction(self) -> CosmosARLossReduction:
        if not getattr(self, "_cosmos_train_loss", None):
            self._cosmos_train_loss = CosmosARLossReduction(self.config.z_loss_coeff, loss_impl=self.config.loss_impl)
        return self._cosmos_train_loss

    @property
    def validation_loss_reduction(self) -> CosmosARLossReduction:
        if not getattr(self, "_cosmos_val_loss", None):
            self._cosmos_val_loss = CosmosARLossReduction(self.config.z_loss_coeff, validation_step=True,
                                                          loss_impl=self.config.loss_impl)  # fmt: skip
        return self._cosmos_val_loss


# Registers the pt/hf importers and exporters on CosmosARModel. NeMo finds connectors on the model class, and loading a
# checkpoint's io.json imports only this module, so the registration has to happen here.
from nemo_cosmos_ar.nemo_glue import connectors as _connectors  # noqa: E402,F401
