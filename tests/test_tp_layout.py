"""cosmos-predict1's tensor-parallel shard layout, pinned against the axes cosmos-predict1 documents, not against
``tp_layout``'s own table (a swapped axis would otherwise split and merge consistently and pass every round trip).

cosmos-predict1 ``utils/checkpoint.py`` ``obtain_tensor_parallel_state_dict`` (torch.chunk, contiguous blocks):
column-parallel weights (``ColumnParallelLinear`` in training: wq, wk, wv, w1, w3, and the vocab-parallel
tok_embeddings / output) are chunked along dim 0 -- whole heads for wq/wk/wv -- and row-parallel weights
(``RowParallelLinear``: wo, w2) along dim 1; norms are replicated. No NeMo, no Megatron: fast.
"""

import torch

from nemo_cosmos_ar.conversion import native_io, tp_layout
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.presets import get_preset

COLUMN_PARALLEL = (
    "attention.wq.weight",
    "attention.wk.weight",
    "attention.wv.weight",
    "feed_forward.w1.weight",
    "feed_forward.w3.weight",
    "tok_embeddings.weight",
    "output.weight",
)
ROW_PARALLEL = ("attention.wo.weight", "feed_forward.w2.weight")


def _documented_chunk(key: str, t: torch.Tensor, tp: int, rank: int) -> torch.Tensor:
    """Rank ``rank``'s part of ``t`` by cosmos-predict1's documented rule, written out without ``tp_layout``."""
    if key.endswith(ROW_PARALLEL):
        c = t.shape[1] // tp
        return t[:, rank * c : (rank + 1) * c]
    if key.endswith(COLUMN_PARALLEL):
        r = t.shape[0] // tp
        return t[rank * r : (rank + 1) * r]
    assert "norm" in key, key
    return t


def test_split_axes_are_the_documented_ones():
    cfg = get_preset("tiny")
    for key in cm.native_shapes(cfg):
        want = 1 if key.endswith(ROW_PARALLEL) else 0 if key.endswith(COLUMN_PARALLEL) else None
        assert tp_layout.tp_split_dim(key) == want, key


def test_written_shards_hold_the_documented_chunks(tmp_path):
    tp = 2
    cfg = get_preset("tiny")  # wo [64, 128], w2 [64, 160], wk/wv [64, 64]: square ones are checked by value
    torch.manual_seed(0)
    sd = {k: torch.randn(s).to(torch.bfloat16) for k, s in cm.native_shapes(cfg).items()}
    paths = native_io.write_tp_shards(tmp_path / "model.pt", native_io.iter_native(sd, cfg), cfg, tp)
    assert [p.name for p in paths] == [f"model_model_mp_{r}.pt" for r in range(tp)]
    for rank, path in enumerate(paths):
        shard = torch.load(path, weights_only=True)
        assert list(shard) == ["model." + k for k in sd]
        for k, v in sd.items():
            assert torch.equal(shard["model." + k], _documented_chunk(k, v, tp, rank)), (rank, k)
        # wq of rank r holds whole heads r·H/tp .. (r+1)·H/tp - 1; wk/wv whole KV heads likewise
        heads = sd["layers.0.attention.wq.weight"].view(cfg.n_heads, cfg.head_dim, cfg.dim)
        per = cfg.n_heads // tp
        got = shard["model.layers.0.attention.wq.weight"].view(per, cfg.head_dim, cfg.dim)
        assert torch.equal(got, heads[rank * per : (rank + 1) * per])
        assert shard["model.layers.1.attention.wo.weight"].shape == (cfg.dim, cfg.q_width // tp)
        assert shard["model.layers.1.feed_forward.w2.weight"].shape == (cfg.dim, cfg.ffn_hidden_size // tp)


def test_documented_shards_merge_back_exactly(tmp_path):
    """Shards cut by the documented rule (as cosmos-predict1 saves them: chunk views) merge to the original."""
    cfg = get_preset("tiny")
    torch.manual_seed(1)
    sd = {k: torch.randn(s).to(torch.bfloat16) for k, s in cm.native_shapes(cfg).items()}
    for rank in range(2):
        torch.save(
            {"model." + k: _documented_chunk(k, v, 2, rank) for k, v in sd.items()},
            tmp_path / f"model_model_mp_{rank}.pt",
        )
    merged = native_io.load_native(tmp_path / "model_model_mp_0.pt")
    assert merged.tp == 2
    for k, v in sd.items():
        assert torch.equal(merged.tensors[k], v), k
