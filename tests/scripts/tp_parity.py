"""torchrun --nproc_per_node=2: the tiny model at TP=2 (gloo, CPU) gives the TP=1 logits and loss."""

import torch


def main() -> None:
    from nemo_cosmos_ar.model import checkpoint_mapping as cm
    from nemo_cosmos_ar.model.loss import cosmos_ar_loss, first_frame_loss_mask, split_clip
    from nemo_cosmos_ar.model.mcore import build_gpt_model
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer
    from nemo_cosmos_ar.runtime import gather_vocab_parallel, init_megatron, shutdown

    init_megatron(tp=2)
    from megatron.core import parallel_state as ps

    rank = ps.get_tensor_model_parallel_rank()
    cfg = get_preset("tiny")
    ref = ReferenceTransformer(cfg).init_random(seed=5)
    full = cm.native_to_mcore(ref.state_dict(), cfg)
    model = build_gpt_model(cfg, tensor_model_parallel_size=2)
    shard = {k: cm.mcore_tp_slice(k, v, 2, rank) for k, v in full.items()}
    missing, unexpected = model.load_state_dict(shard, strict=False)
    assert [k for k in missing if not k.endswith("_extra_state")] == [] and unexpected == [], (missing, unexpected)

    clip = torch.randint(0, cfg.vocab_size, (2, cfg.seq_length), generator=torch.Generator().manual_seed(11))
    tokens, labels = split_clip(clip)
    pos = torch.arange(tokens.shape[1])[None].expand(2, -1)
    with torch.no_grad():
        want = ref(tokens)
        local = model(tokens, pos, None)
        got = gather_vocab_parallel(local)
        mask = first_frame_loss_mask(cfg.latent_shape)[None].expand(2, -1)
        loss_tp, _ = cosmos_ar_loss(local, labels, mask)
        loss_ref, _ = cosmos_ar_loss(want, labels, mask, vocab_parallel=False)
    err = (got - want).abs().max().item()
    print(f"rank {rank}: local {tuple(local.shape)} gathered {tuple(got.shape)} max|d|={err:.3e} "
          f"loss tp2={loss_tp.item():.6f} ref={loss_ref.item():.6f}")  # fmt: skip
    assert local.shape[-1] == cfg.vocab_size // 2
    assert err < 1e-5
    assert abs(loss_tp.item() - loss_ref.item()) < 1e-5
    if rank == 0:
        print("TP2_PARITY_OK")
    shutdown()


if __name__ == "__main__":
    main()
