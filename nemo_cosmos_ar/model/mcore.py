"""Build the Cosmos AR transformer as a Megatron-Core ``GPTModel`` (Megatron-Core only, no NeMo).

``transformer_config`` is the single translation from ``CosmosARConfig`` to Megatron's ``TransformerConfig``;
the NeMo glue reuses it field by field, so both paths build the same network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.rope3d import RotaryEmbedding3D

# Megatron ``TransformerConfig`` settings every Cosmos AR size shares: RMSNorm, QK-norm, SwiGLU without biases, no
# dropout, cosmos-predict1's init std. Fusions that need apex/TE kernels are off (the GPU recipes turn some on); the
# SDPA core attention does not use the softmax fusion anyway. The NeMo config's defaults are this dict.
ARCHITECTURE: dict = dict(
    normalization="RMSNorm",
    qk_layernorm=True,
    add_bias_linear=False,
    add_qkv_bias=False,
    gated_linear_unit=True,
    activation_func=F.silu,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    init_method_std=0.02,
    masked_softmax_fusion=False,
    bias_activation_fusion=False,
    bias_dropout_fusion=False,
    apply_rope_fusion=False,
    persist_layer_norm=False,
    gradient_accumulation_fusion=False,
    cross_entropy_loss_fusion=False,
)


def transformer_config_kwargs(cfg: CosmosARConfig) -> dict:
    """Architecture fields of Megatron's ``TransformerConfig`` for ``cfg``; parallelism/precision stay with the caller."""
    return dict(
        num_layers=cfg.n_layers,
        hidden_size=cfg.dim,
        ffn_hidden_size=cfg.ffn_hidden_size,
        num_attention_heads=cfg.n_heads,
        num_query_groups=cfg.n_kv_heads,
        kv_channels=cfg.head_dim,
        layernorm_epsilon=cfg.norm_eps,
        **ARCHITECTURE,
    )


class Cosmos3DRotaryEmbedding(RotaryEmbedding3D):
    """``RotaryEmbedding3D`` plus the context-parallel slicing Megatron's own RoPE module does."""

    def forward(self, max_seq_len: int, offset: int = 0, packed_seq: bool = False, **kw) -> Tensor:
        emb = super().forward(max_seq_len, offset, packed_seq)
        from megatron.core import parallel_state

        if parallel_state.model_parallel_is_initialized() and parallel_state.get_context_parallel_world_size() > 1:
            from megatron.core.models.common.embeddings.rotary_pos_embedding import get_pos_emb_on_this_cp_rank

            emb = get_pos_emb_on_this_cp_rank(emb, 0, parallel_state.get_context_parallel_group())
        return emb


def install_rope_3d(model, cfg: CosmosARConfig) -> None:
    """Swap a ``GPTModel``'s 1D RoPE for the Cosmos 3D table (no parameters, no buffers)."""
    model.rotary_pos_emb = Cosmos3DRotaryEmbedding(cfg)


def build_gpt_model(
    cfg: CosmosARConfig, spec: str | None = None, params_dtype: torch.dtype = torch.float32, **config_overrides
):
    """A ``GPTModel`` for ``cfg`` under the current ``parallel_state`` (initialise model parallel first).

    ``config_overrides`` go to ``TransformerConfig`` (e.g. ``tensor_model_parallel_size``, ``sequence_parallel``,
    ``recompute_granularity``). Outputs stay vocab-parallel (``parallel_output=True``) like in training.
    """
    from megatron.core.models.gpt import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig

    from nemo_cosmos_ar.model.layer_spec import cosmos_layer_spec

    kw = transformer_config_kwargs(cfg)
    kw.update(params_dtype=params_dtype, bf16=params_dtype == torch.bfloat16, use_cpu_initialization=True)
    kw.update(config_overrides)
    tconfig = TransformerConfig(**kw)
    model = GPTModel(
        config=tconfig,
        transformer_layer_spec=cosmos_layer_spec(spec),
        vocab_size=cfg.vocab_size,
        max_sequence_length=cfg.seq_length,
        position_embedding_type="rope",
        rotary_base=int(cfg.rope_theta),
        share_embeddings_and_output_weights=False,
        parallel_output=True,
    )
    install_rope_3d(model, cfg)
    return model
