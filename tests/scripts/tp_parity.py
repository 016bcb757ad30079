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
    # The chunked vocab-parallel loss's gradient on this rank's logits shard equals the slice of the full-vocab
    # reference gradient (autograd through fp32 copies), forward and backward through the TP all-reduces.
    from nemo_cosmos_ar.model.loss import token_terms_reference

    lp = local.detach().clone().requires_grad_()
    fp = want.detach().clone().requires_grad_()
    cosmos_ar_loss(lp, labels, mask, z_loss_coeff=0.01)[0].backward()
    terms = token_terms_reference(fp, labels, vocab_parallel=False)
    m = mask.float()
    ((terms.ce * m).sum() / m.sum() + 0.01 * terms.lse.pow(2).mean()).backward()
    v = cfg.vocab_size // 2
    gerr = (lp.grad - fp.grad[..., rank * v : (rank + 1) * v]).abs().max().item()
    print(f"rank {rank}: loss grad max|d|={gerr:.3e}")
    assert gerr < 1e-6, gerr
    err = (got - want).abs().max().item()
    print(
        f"rank {rank}: local {tuple(local.shape)} gathered {tuple(got.shape)} max|d|={err:.3e} "
        f"loss tp2={loss_tp.item():.6f} ref={loss_ref.item():.6f}"
    )
    assert local.shape[-1] == cfg.vocab_size // 2
    assert err < 1e-5
    assert abs(loss_tp.item() - loss_ref.item()) < 1e-5
    if rank == 0:
        print("TP2_PARITY_OK")
    shutdown()


if __name__ == "__main__":
    main()
