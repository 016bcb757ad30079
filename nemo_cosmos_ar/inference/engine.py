"""KV-cache decoding on the Megatron-Core ``GPTModel`` that trains, at any tensor-parallel size.

One model implementation for training and generation: the network is ``model/mcore.build_gpt_model`` (the layer
spec training uses), its weights and its tensor-parallel collectives are Megatron-Core's (``ColumnParallelLinear``
/ ``RowParallelLinear`` all-reduces, ``VocabParallelEmbedding``); only the vocab-parallel logits are gathered here.
What this module adds is what Megatron's training forward lacks for decoding: a static KV cache and a step with
shapes that do not depend on the position, so that one step can be captured in a CUDA graph. Per layer it calls
the layer's own modules in the order ``TransformerLayer.forward`` does: ``input_layernorm``,
``self_attention.get_query_key_value_tensors`` (fused QKV projection + QK RMSNorm), 3D RoPE (the formula of
Megatron's ``apply_rotary_pos_emb``, cos/sin tabulated once), the attention core,
``linear_proj``, the residual add, ``pre_mlp_layernorm``, ``mlp`` (fused gate/up), the residual add.

* **prefill** (positions 0..P-1) runs the spec's own core attention with the causal mask, as training does;
* **step** (one token at a device-side position) writes its K/V into the cache and attends, with SDPA (GQA without
  copying the cache), to the first ``attend`` slots under a ``slot <= pos`` mask. ``attend`` is a Python int fixed per
  captured graph: the whole cache, or a length bucket that covers the position (less of the cache read per token).

No NeMo import. Megatron-Core's parallel state must be initialised (``init_parallel``, from ``mcore_setup.py``) before
building.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F

from nemo_cosmos_ar.inference import (
    decode_kernel,
    fused_int8,
    fused_step,
    gemv_cuda,
    quant,
    symm_reduce,
    verify_kernel,
)
from nemo_cosmos_ar.inference.mcore_setup import (  # noqa: F401  (re-exported: engine.init_parallel etc.)
    _quiet_megatron_import,
    build_model,
    check_tp,
    init_parallel,
    skip_megatron_extension_builds,
    world,
)
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.rope3d import rope_3d_table

_ROPE_COMPILED = None
_FLEX_COMPILED = None


class McoreEngine:
    """Prefill / decode steps over a ``GPTModel`` (this TP rank's shard) with a static KV cache.

    Attributes:
        cfg: the architecture, ``latent_shape`` = the grid being generated (fixes every RoPE position).
        vocab_size: width of the logits returned (the full vocabulary, gathered over TP ranks).
    """

    def __init__(self, model, cfg: CosmosARConfig) -> None:
        from megatron.core import parallel_state

        self.model, self.cfg, self.vocab_size = model, cfg, cfg.vocab_size
        self.layers = list(model.decoder.layers)
        self.device = model.output_layer.weight.device
        self.dtype = model.output_layer.weight.dtype
        self.tp = parallel_state.get_tensor_model_parallel_world_size()
        attn = self.layers[0].self_attention
        self.groups, self.head_dim = attn.num_query_groups_per_partition, attn.hidden_size_per_attention_head
        self.scale = getattr(attn.core_attention, "softmax_scale", None)
        # cos/sin of every grid position, computed as Megatron's _apply_rotary_pos_emb_bshd does per call
        # (fp32 angles, cast to the activations' dtype; mscale 1), so tabulating changes no bit.
        angles = rope_3d_table(cfg, device=self.device)  # [S, 1, 1, head_dim] fp32
        self.cos, self.sin = angles.cos().to(self.dtype), angles.sin().to(self.dtype)
        # How a decode step attends: "sdpa", "gemm" (``_gemm_attention``), "flex" (``_flex_attention``) or "triton"
        # (``decode_kernel.decode_attention``: hand-written split-K flash-decoding; needs Triton).
        self.decode_attention = "sdpa"
        # Decode-step RoPE as one compiled kernel per tensor instead of about six elementwise ones (see
        # ``_rope_fused``); off by default until measured.
        self.fused_rope = False
        # The decode step's norms, RoPE, residual adds and SwiGLU fused between the GEMMs (``fused_step.py``); only
        # for the non-TransformerEngine spec (``fusable``).
        self.fused_step = False
        self.fusable = fused_step.supported(model)
        # With the Triton attention: the kernel writes this step's K/V into the cache (no index_copy_ launches).
        # Off by default until measured on a GPU.
        self.fused_cache_write = False
        # With the fused step at batch 1: the projections as the Triton matrix-vector kernel (``gemv.py``) instead
        # of cuBLAS. Off by default until measured on a GPU; ``gemv_ok`` says whether the layers allow it.
        self.gemv = False
        # With ``gemv``: the norms, SwiGLU and residual adds folded into the kernel (``fused_step.run_layers_gemv``).
        self.gemv_fuse = False
        self.gemv_ok = fused_step.gemv_supported(model)
        # With ``gemv``: fc1 and the SwiGLU as one kernel (``gemv.gemv(..., glu=True)``).
        self.gemv_glu = False
        # With ``gemv`` at TP=1 (batch 1, where it was measured): the step's Triton kernels (products, attention,
        # compiled pieces) launched with programmatic dependent launch (Hopper+), so each starts while the one before
        # drains (``fused_step.pdl_supported``), and the Triton attention writing the step's K/V itself: the two
        # index_copy_ launches per layer it saves would be the only other kernels between the layers' kernels.
        self.pdl = False
        # At TP > 1: the batch-1 step's all-reduces by torch's symmetric-memory one-shot kernel (``symm_reduce.py``)
        # instead of NCCL; None = NCCL. Set by ``configure_decode`` (collective: every rank builds it).
        self.reducer = None
        # Programmatic dependent launch at TP > 1 too (``pdl`` alone is TP=1 only, where it was measured).
        self.pdl_tp = False
        # "int8": the decode projections quantized per output row (``quant.py``; the batch-1 gemv step reads the int8
        # copies, everything else the dequantized bf16 weights). Set by ``configure_decode`` only: it is one-way.
        self.weights = "bf16"
        # With int8 weights: "cuda" runs their batch-1 products by the hand-written kernel (``gemv_cuda.py``, 10%
        # faster per layer on the H200), "triton" by ``gemv.gemv``. Set by ``configure_decode``.
        self.int8_kernel = "triton"

    # ---- cache ----
    def new_cache(self, batch: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer ``(K, V)`` of ``[B, groups on this rank, length, head_dim]``: the layout SDPA reads without a
        copy (heads before positions)."""
        shape = (batch, self.groups, length, self.head_dim)
        return [
            (
                torch.zeros(shape, dtype=self.dtype, device=self.device),
                torch.zeros(shape, dtype=self.dtype, device=self.device),
            )
            for _ in self.layers
        ]

    # ---- forward pieces ----
    _rope = staticmethod(fused_step.rope)  # Megatron's apply_rotary_pos_emb formula (one copy, shared)

    @staticmethod
    def _rope_fused(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """``_rope`` compiled into one kernel (fp32 inside, one rounding). At batch 1 a decode step is launch-bound:
        the eager form's ~6 kernels per tensor are ~190 of a 4B step's kernels."""
        global _ROPE_COMPILED
        if _ROPE_COMPILED is None:

            def rope32(x, cos, sin):
                xf = x.float()
                x1, x2 = xf.chunk(2, dim=-1)
                return (xf * cos.float() + torch.cat((-x2, x1), dim=-1) * sin.float()).to(x.dtype)

            _ROPE_COMPILED = torch.compile(rope32, dynamic=False)
        return _ROPE_COMPILED(x, cos, sin)

    def _layer(self, layer, x, cos, sin, kv, attend_fn, rope=None):
        attn = layer.self_attention
        q, k, v = attn.get_query_key_value_tensors(layer.input_layernorm(x))  # [s, b, heads, hd], [s, b, groups, hd]
        rope = rope or self._rope
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        o = attend_fn(attn, q, k, v, kv)  # [s, b, heads * hd]
        x = x + attn.linear_proj(o)[0]
        return x + layer.mlp(layer.pre_mlp_layernorm(x))[0]

    def _gather(self, logits: torch.Tensor) -> torch.Tensor:
        """Vocab-parallel ``[..., vocab / tp]`` -> ``[..., vocab]`` (rank r holds rows r·V/tp.. of the output layer).

        Megatron's ``gather_from_tensor_model_parallel_region`` allocates on ``torch.cuda.current_device()``, so the
        gather is done here: one ``all_gather_into_tensor`` (NCCL, capturable in a CUDA graph) or gloo's list form.
        """
        if self.tp == 1:
            return logits
        from megatron.core import parallel_state

        group = parallel_state.get_tensor_model_parallel_group()
        logits = logits.contiguous()
        if self.device.type == "cuda":
            parts = torch.empty((self.tp, *logits.shape), dtype=logits.dtype, device=logits.device)
            dist.all_gather_into_tensor(parts, logits, group=group)
        else:
            chunks = [torch.empty_like(logits) for _ in range(self.tp)]
            dist.all_gather(chunks, logits, group=group)
            parts = torch.stack(chunks)
        return torch.cat(parts.unbind(0), dim=-1)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Last position's logits ``[B, vocab]`` from hidden states ``[s, B, dim]``, gathered over TP ranks."""
        h = self.model.decoder.final_layernorm(x[-1:])
        logits = self.model.output_layer(h)[0][0]  # [B, vocab / tp]
        return self._gather(logits)[:, : self.vocab_size]

    def prefill(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        """Run positions ``0..P-1`` of ``tokens [B, P]``, fill the cache, return the logits of position P-1."""
        from megatron.core.transformer.enums import AttnMaskType

        s = tokens.shape[1]

        def attend(attn, q, k, v, kv):
            kv[0][:, :, :s] = k.permute(1, 2, 0, 3)
            kv[1][:, :, :s] = v.permute(1, 2, 0, 3)
            return attn.core_attention(q, k, v, None, attn_mask_type=AttnMaskType.causal)

        x = self.model.embedding(input_ids=tokens, position_ids=None)  # [P, B, dim]
        cos, sin = self.cos[:s], self.sin[:s]
        for layer, kv in zip(self.layers, cache):
            x = self._layer(layer, x, cos, sin, kv, attend)
        return self._logits(x)

    def step(self, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
        """Logits ``[B, vocab]`` after ``tokens [B, 1]`` at position ``pos`` (a one-element int64 tensor on the
        device), attending to cache slots ``0..pos`` among the first ``attend`` (``attend > pos``, fixed per graph).

        Every shape depends on ``attend`` only, and the position is read on the device: no host sync.
        """
        # The mask SDPA and the gemm attention take (the Triton and flex kernels read pos themselves): built once per
        # step, and only for them -- at batch 1 every kernel launch in the step counts.
        visible = None
        if self.decode_attention in ("sdpa", "gemm"):
            visible = (torch.arange(attend, device=self.device) <= pos).view(1, 1, 1, attend)
        cos, sin = self.cos.index_select(0, pos), self.sin.index_select(0, pos)  # [1, 1, 1, hd]
        gemv = self.fused_step and self.gemv and tokens.shape[0] == 1  # a matrix-vector product: batch 1 only
        pdl = self.pdl and gemv and (self.tp == 1 or self.pdl_tp) and self.device.type == "cuda"
        write = self.fused_cache_write or pdl

        def attend_fn(attn, q, k, v, kv):
            kc, vc = kv
            if self.decode_attention == "triton" and write:  # the kernel writes slot pos itself
                kv_at = (kc[:, :, :attend], vc[:, :, :attend])
                return decode_kernel.decode_attention(q, *kv_at, pos, self.scale, k_new=k[0], v_new=v[0], pdl=pdl)
            kc.index_copy_(2, pos, k.permute(1, 2, 0, 3))
            vc.index_copy_(2, pos, v.permute(1, 2, 0, 3))
            if self.decode_attention == "gemm":
                return self._gemm_attention(q, kc[:, :, :attend], vc[:, :, :attend], visible)
            if self.decode_attention == "flex":
                return self._flex_attention(q, kc[:, :, :attend], vc[:, :, :attend], pos)
            if self.decode_attention == "triton":
                return decode_kernel.decode_attention(q, kc[:, :, :attend], vc[:, :, :attend], pos, self.scale, pdl=pdl)
            o = F.scaled_dot_product_attention(
                q.permute(1, 2, 0, 3),
                kc[:, :, :attend],
                vc[:, :, :attend],
                attn_mask=visible,
                scale=self.scale,
                enable_gqa=True,
            )  # [B, heads, 1, hd]: q-head j reads KV group j // (heads / groups), no cache copy
            return o.permute(2, 0, 1, 3).reshape(1, o.shape[0], -1)

        x = self.model.embedding(input_ids=tokens, position_ids=None)  # [1, B, dim]
        if self.fused_step:
            if not self.fusable:
                raise ValueError("fused_step needs the non-TransformerEngine layer spec (torch RMSNorm, SwiGLU)")
            if self.gemv and not self.gemv_ok:
                raise ValueError("gemv needs plain Megatron parallel linears (no adapters, bias or sequence parallel)")
            if gemv and self.int8_kernel == "fused":
                return self._gather(fused_int8.run_layers(self, x, cos, sin, cache, attend_fn)[0])[:, : self.vocab_size]
            if gemv and self.gemv_fuse:
                logits = fused_step.run_layers_gemv(self, x, cos, sin, cache, attend_fn)
                return self._gather(logits[0])[:, : self.vocab_size]
            h = fused_step.run_layers(self, x, cos, sin, cache, attend_fn, gemv=gemv, glu=self.gemv_glu, pdl=pdl)
            c8 = self.int8_kernel == "cuda"
            logits = fused_step.project(self.model.output_layer, h, gemv, False, pdl, int8_cuda=c8)
            return self._gather(logits[0])[:, : self.vocab_size]
        rope = self._rope_fused if self.fused_rope else self._rope
        for layer, kv in zip(self.layers, cache):
            x = self._layer(layer, x, cos, sin, kv, attend_fn, rope)
        return self._logits(x)

    def verify(self, tokens: torch.Tensor, pos: torch.Tensor, cache, attend: int) -> torch.Tensor:
        """Logits ``[M, vocab]`` of ``tokens [1, M]`` at positions ``pos .. pos + M - 1`` (``pos`` a one-element
        device tensor), their K/V written into the cache, row i attending to slots ``0 .. pos + i`` among the first
        ``attend``: the forward of speculative decoding (``speculative.py``), the weights read once for M tokens.

        Rows past the grid (the window's tail at the end) write their K/V to the cache's spare slots and take the
        last position's RoPE angles; their logits mean nothing. With the fused step the M tokens are its batch rows
        (its compiled norms, RoPE and SwiGLU; cuBLAS products), otherwise Megatron's layers run them as a sequence.
        The attention is ``verify_kernel``'s split-K kernel with the ``"triton"`` decode attention, else two GEMMs
        per KV group with an fp32 softmax.
        """
        m = tokens.shape[1]
        slots = pos + torch.arange(m, device=self.device)
        rows = slots.clamp(max=self.cos.shape[0] - 1)
        # GQA without copying the cache: a group's hpg query heads x M positions are the rows of one attention over
        # that group's K/V (row r is position r // hpg), under a mask built once for all layers.
        hpg = self.layers[0].self_attention.num_attention_heads_per_partition // self.groups
        visible = None
        if self.decode_attention != "triton":  # the kernel masks by position itself
            visible = (torch.arange(attend, device=self.device)[None] <= slots[:, None]).repeat_interleave(hpg, 0)

        def attend_fn(attn, q, k, v, kv):
            kc, vc = kv  # [1, groups, length, hd]
            g, hd = kc.shape[1], kc.shape[3]
            if k is not None:  # else the fused step's QK-norm/RoPE kernel wrote them (``cache_slots``)
                fused_step.write_window(kc, vc, slots, k, v)
            if self.decode_attention == "triton":  # split-K flash attention over the filled slots only
                o = verify_kernel.verify_attention(
                    q.reshape(m, g * hpg, hd), kc[0, :, :attend], vc[0, :, :attend], pos, self.scale
                )
                return o.view(q.shape[0], q.shape[1], g * hpg * hd)
            # Otherwise the decode's "gemm" attention with a group's M * hpg rows as its query heads (two GEMMs, the
            # softmax in fp32). On the H200 SDPA under this mask took 6.5-7.1 ms a forward and compiled
            # flex_attention 180 ms, against 3.6 ms at M = 17 (BENCHMARKS.md, issue 13).
            qg = q.reshape(m, g, hpg, hd).permute(1, 0, 2, 3).reshape(1, 1, g * m * hpg, hd)
            o = self._gemm_attention(qg, kc[:, :, :attend], vc[:, :, :attend], visible)  # [1, 1, g * M * hpg * hd]
            return o.view(g, m, hpg, hd).permute(1, 0, 2, 3).reshape(q.shape[0], q.shape[1], g * hpg * hd)

        x = self.model.embedding(input_ids=tokens, position_ids=None)  # [M, 1, dim]
        if self.fused_step:
            cos = self.cos.index_select(0, rows).view(1, m, 1, -1)
            sin = self.sin.index_select(0, rows).view(1, m, 1, -1)
            h = fused_step.run_layers(self, x.view(1, m, -1), cos, sin, cache, attend_fn, cache_slots=slots)
            logits = fused_step.project(self.model.output_layer, h, False, False)[0]
        else:
            cos, sin = self.cos.index_select(0, rows), self.sin.index_select(0, rows)  # [M, 1, 1, hd]
            for layer, kv in zip(self.layers, cache):
                x = self._layer(layer, x, cos, sin, kv, attend_fn)
            logits = self.model.output_layer(self.model.decoder.final_layernorm(x))[0][:, 0]
        return self._gather(logits)[:, : self.vocab_size]

    def _gemm_attention(self, q, k, v, visible):
        """One query position against the cache as two batched GEMMs per KV group (``"gemm"`` decode attention).

        SDPA with a mask and ``enable_gqa`` has no fused kernel and falls back to the math path, which first copies
        K and V once per query head (``repeat_interleave``): for the 4B, 4x the cache read per layer. Here the
        ``heads / groups`` query heads of a group become the rows of one GEMM against that group's K, so the cache
        is read once; the softmax runs in fp32 (as the math path's result is rounded once).
        q ``[1, B, heads, hd]``, k/v ``[B, groups, L, hd]``, visible ``[1, 1, 1, L]`` (or per query row of a group,
        ``[heads / groups, L]``: ``verify``) -> ``[1, B, heads * hd]``.
        """
        b, g, _, hd = k.shape
        qg = q[0].view(b, g, -1, hd)  # [B, groups, heads per group, hd]
        scale = self.scale if self.scale is not None else hd**-0.5
        scores = torch.matmul(qg, k.transpose(-1, -2)).float() * scale  # [B, groups, hpg, L]
        probs = scores.masked_fill(~visible, float("-inf")).softmax(-1).to(v.dtype)
        return torch.matmul(probs, v).reshape(1, b, -1)

    def _flex_attention(self, q, k, v, pos):
        """One query position against the cache with ``flex_attention`` (``"flex"`` decode attention).

        On CUDA the compiled flex_attention uses its decoding kernel for a one-position query, which splits the cache
        across thread blocks (flash-decoding) and reads each KV group once for all its query heads; the position
        mask is a score modification reading ``pos`` on the device, so the step stays capturable. On CPU it runs
        uncompiled (the same function, for the tests).
        q ``[1, B, heads, hd]``, k/v ``[B, groups, L, hd]`` -> ``[1, B, heads * hd]``.
        """
        from torch.nn.attention.flex_attention import flex_attention

        global _FLEX_COMPILED
        run = flex_attention
        if q.is_cuda:
            if _FLEX_COMPILED is None:
                # one compile per attention length (bucket): raise dynamo's default limit of 8 so a long grid with
                # small buckets does not fall back to the (very slow) uncompiled flex_attention
                import torch._dynamo.config as dcfg

                for knob in ("recompile_limit", "cache_size_limit"):
                    if hasattr(dcfg, knob):
                        setattr(dcfg, knob, max(getattr(dcfg, knob), 64))
                _FLEX_COMPILED = torch.compile(flex_attention, dynamic=False)
            run = _FLEX_COMPILED
        mods = self.__dict__.setdefault("_flex_mods", {})
        visible = mods.get(id(pos))
        if visible is None:  # one score modification per position buffer: a new closure would recompile

            def visible(score, b, h, q_idx, kv_idx):
                return torch.where(kv_idx <= pos[0], score, -float("inf"))

            mods[id(pos)] = visible
        with warnings.catch_warnings():  # uncompiled on CPU on purpose: no "use torch.compile" advice
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            o = run(q.permute(1, 2, 0, 3), k, v, score_mod=visible, scale=self.scale, enable_gqa=True)
        return o.permute(2, 0, 1, 3).reshape(1, o.shape[0], -1)

    def dynamic_step(self, tokens: torch.Tensor, pos: int, cache) -> torch.Tensor:
        """``step`` attending to exactly the filled slots ``0..pos`` (eager decoding; a new shape every step)."""
        return self.step(tokens, torch.tensor([pos], device=self.device), cache, pos + 1)

    @torch.inference_mode()
    def teacher_forced(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, S, vocab]`` of the training forward (``GPTModel.forward``, no cache), gathered."""
        pos = torch.arange(tokens.shape[1], device=self.device)[None]
        logits = self.model(tokens.to(self.device), pos, None)
        return self._gather(logits)[..., : self.vocab_size]


DECODE_ATTENTION = ("auto", "sdpa", "triton", "gemm", "flex")
INT8_KERNELS = ("auto", "cuda", "fused", "triton")  # --decode-int8-kernel


def configure_decode(
    engine: McoreEngine,
    attention: str = "auto",
    fused: str = "auto",
    gemv: str = "auto",
    pdl: str = "auto",
    weights: str = "bf16",
    reduce: str = "auto",
    int8_kernel: str = "auto",
) -> McoreEngine:
    """Pick the decode step's attention, whether its small ops are fused (``fused_step``), whether its batch-1
    projections are the Triton matrix-vector kernel (``gemv.py``; needs the fused step) and whether, at batch 1 and
    TP=1, the step's Triton kernels use programmatic dependent launch (``pdl``; ``McoreEngine.pdl``).

    ``reduce``: how the batch-1 step's TP all-reduces run: "symm" (torch's symmetric-memory one-shot kernel,
    ``symm_reduce.py``; batch-1 matrix-vector step only), "nccl" (the process group's) or "auto" (nccl until
    the one-shot kernel is measured faster).

    ``weights="int8"`` (opt-in: it changes the outputs): quantize the decode projections to int8 per output row,
    once (``quant.quantize_model``), so the batch-1 matrix-vector products read half the bytes; needs that kernel
    (fused step and gemv on). It cannot be undone on this engine (its weights now hold the dequantized values).

    ``int8_kernel`` (with ``weights="int8"``): "cuda" (``gemv_cuda.py``, compiled here by NVRTC; an error where it
    cannot be), "fused" (cuda with a norm, the residual adds and the SwiGLU folded in, ``fused_int8.py``; TP=1),
    "triton" (``gemv.gemv``) or "auto" (fused at TP=1 and cuda otherwise where the kernel compiles, else triton).

    ``"auto"``: on CUDA the Triton split-K kernel (when Triton imports), the fused step (when the spec is the
    non-TransformerEngine one), the matrix-vector kernel and, on Hopper or later, programmatic dependent launch --
    the fastest measured on an H200 (BENCHMARKS.md, issue 12); elsewhere SDPA, unfused, cuBLAS.
    """
    if attention not in DECODE_ATTENTION:
        raise ValueError(f"unknown decode attention {attention!r}; choose one of {', '.join(DECODE_ATTENTION)}")
    if fused not in ("auto", "on", "off"):
        raise ValueError(f"fused step must be auto, on or off, got {fused!r}")
    if gemv not in ("auto", "on", "off"):
        raise ValueError(f"gemv must be auto, on or off, got {gemv!r}")
    if pdl not in ("auto", "on", "off"):
        raise ValueError(f"pdl must be auto, on or off, got {pdl!r}")
    if weights not in ("bf16", "int8"):
        raise ValueError(f"decode weights must be bf16 or int8, got {weights!r}")
    if reduce not in symm_reduce.MODES:
        raise ValueError(f"decode reduce must be auto, nccl or symm, got {reduce!r}")
    if int8_kernel not in INT8_KERNELS:
        raise ValueError(f"decode int8 kernel must be one of {', '.join(INT8_KERNELS)}, got {int8_kernel!r}")
    cuda = engine.device.type == "cuda"
    if attention == "auto":
        attention = "triton" if cuda and decode_kernel.available() else "sdpa"
    if fused == "on" and not engine.fusable:
        raise ValueError("--fused-step on needs the non-TransformerEngine layer spec (torch RMSNorm, SwiGLU)")
    engine.decode_attention = attention
    engine.fused_step = fused == "on" or (fused == "auto" and cuda and engine.fusable)
    if gemv == "on" and not (engine.fused_step and engine.gemv_ok):
        raise ValueError("--decode-gemv on needs the fused step and plain Megatron linears (no adapters or bias)")
    engine.gemv = gemv == "on" or (
        gemv == "auto" and cuda and engine.fused_step and engine.gemv_ok and decode_kernel.available()  # Triton
    )
    engine.gemv_glu = False  # fc1 + SwiGLU in one kernel measured slower on the H200 (BENCHMARKS.md); kept as an option
    if pdl == "on" and not (engine.fused_step and fused_step.pdl_supported(engine.device)):
        raise ValueError("--decode-pdl on needs the fused step on a CUDA GPU of compute capability 9.0 or later")
    engine.pdl = pdl == "on" or (
        pdl == "auto" and engine.fused_step and fused_step.pdl_supported(engine.device) and decode_kernel.available()
    )
    if weights == "int8" and not (engine.fused_step and engine.gemv):
        raise ValueError(
            "--decode-weights int8 needs the batch-1 matrix-vector decode: --fused-step and --decode-gemv on "
            "(their default on a CUDA GPU with Triton)"
        )
    if weights == "bf16" and quant.is_quantized(engine.model):
        raise ValueError("--decode-weights bf16: this engine's weights were quantized to int8; load the model again")
    # checked before the weights change
    kernel8 = gemv_cuda.pick(int8_kernel, engine.device, engine.pdl) if weights == "int8" else "triton"
    if weights == "int8":
        quant.quantize_model(engine.model)
    if int8_kernel == "auto" and kernel8 == "cuda" and fused_int8.supported(engine):
        kernel8 = "fused"  # 0.1-1.3% faster decode on the H200, never slower (fused_int8.py)
    if kernel8 == "fused":
        if not fused_int8.supported(engine):
            raise ValueError("--decode-int8-kernel fused: needs TP=1 and RMSNorms with an explicit eps; use cuda")
        fused_int8.prepare(engine.model)
    engine.weights, engine.int8_kernel = weights, kernel8
    from megatron.core import parallel_state

    group = parallel_state.get_tensor_model_parallel_group() if engine.tp > 1 else None
    engine.reducer = symm_reduce.make_reducer(reduce, engine.fused_step and engine.gemv, group, engine)
    return engine


def load_engine(ckpt, tp: int, device: torch.device, dtype: torch.dtype) -> McoreEngine:
    """Build the ``GPTModel`` for an opened ``checkpoints.Checkpoint`` at ``tp`` and fill this rank's weights."""
    rows = ckpt.vocab_rows if ckpt.vocab_rows != ckpt.cfg.vocab_size else None
    model = build_model(ckpt.cfg, tp, device, dtype, vocab_rows=rows)
    ckpt.load_into(model)
    return McoreEngine(model, ckpt.cfg)
