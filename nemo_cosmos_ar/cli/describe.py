"""``cosmos-ar describe``: architecture, parameter count, latent grid, tokens per clip and training FLOPs/token.

Example::

    cosmos-ar describe --model 4b --resolution 640x1024 --num-frames 33
"""

from __future__ import annotations

import argparse

from nemo_cosmos_ar.checks import UserError, check_choice, check_resolution
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.loss import first_frame_loss_mask
from nemo_cosmos_ar.model.presets import PRESETS, get_preset
from nemo_cosmos_ar.tokenizer import grid


def parse_resolution(text: str) -> tuple[int, int]:
    """``HEIGHTxWIDTH``, both multiples of 16 in [16, ``checks.MAX_SIDE``] (an argparse ``type``; the format rule
    is ``grid.parse_resolution``'s)."""
    try:
        h, w = grid.parse_resolution(text)
        return check_resolution(h, w, name="resolution")
    except (ValueError, UserError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help=f"preset ({', '.join(PRESETS)}); default 4b")
    p.add_argument("--config", help="a cosmos-predict1 style config.json instead of a preset")
    p.add_argument("--resolution", type=parse_resolution, default=(640, 1024), help="HxW in pixels; default 640x1024")
    p.add_argument("--num-frames", type=int, default=33, help="frames per clip, 1+8k; default 33")


def describe(cfg: CosmosARConfig, resolution: tuple[int, int], num_frames: int) -> str:
    shape = grid.latent_shape(num_frames, *resolution)
    cfg = cfg.with_latent_shape(shape)
    n_total, n_body = cfg.num_params(), cfg.num_params(include_embedding=False)
    train_len = cfg.seq_length - 1  # input = clip[:-1], labels = clip[1:]
    flops = cfg.train_flops_per_token(train_len)
    targets = int(first_frame_loss_mask(shape).sum())
    yarn = (
        f"YaRN scale {cfg.yarn_scale:g}, beta {cfg.yarn_beta_fast:g}/{cfg.yarn_beta_slow:g}, "
        f"original grid {'x'.join(map(str, cfg.original_latent_shape))}"
        if cfg.apply_yarn
        else "no YaRN"
    )
    rows = [
        ("model", cfg.name),
        ("layers / hidden / FFN", f"{cfg.n_layers} / {cfg.dim} / {cfg.ffn_hidden_size} (SwiGLU)"),
        ("heads / KV groups / head dim", f"{cfg.n_heads} / {cfg.n_kv_heads} / {cfg.head_dim} (QK RMSNorm)"),
        ("vocab", f"{cfg.vocab_size} (untied output head)"),
        ("norm", f"RMSNorm eps {cfg.norm_eps:g}"),
        ("position", f"3D RoPE theta {cfg.rope_theta:g}, {yarn}"),
        ("parameters", f"{n_total:,} ({n_total / 1e9:.3f} B; {n_body:,} without the input embedding)"),
        ("clip", f"{num_frames} frames at {resolution[0]}x{resolution[1]}"),
        ("latent grid", "x".join(map(str, shape))),
        ("tokens per clip", f"{cfg.seq_length:,}"),
        ("trained targets per clip", f"{targets:,} (first latent frame not predicted)"),
        ("training FLOPs per token", f"{flops:.4e} (6N + causal attention at {train_len:,} tokens)"),
        ("training FLOPs per clip", f"{flops * train_len:.4e}"),
        ("bf16 weights", f"{n_total * 2 / 2**30:.2f} GiB"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    if args.config and args.model:
        raise UserError("--model and --config exclude each other: pass one architecture")
    if args.config:  # types and ranges of every field are checked while parsing (field, value, allowed range)
        cfg = CosmosARConfig.from_json(args.config)
    else:
        cfg = get_preset(check_choice((args.model or "4b").lower(), "--model", PRESETS))
    print(describe(cfg, args.resolution, args.num_frames))
    return 0
