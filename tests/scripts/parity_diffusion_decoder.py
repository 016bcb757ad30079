"""Denoiser parity: this package's DiT against NVIDIA's ``DiffusionDecoderGeneralDIT`` built from the published
cosmos-predict1 module definitions, on the same random weights and inputs.

    python tests/scripts/parity_diffusion_decoder.py --src /path/to/cosmos-predict1 [--stub-missing]

NVIDIA's modules are imported from ``--src`` (the folder holding ``cosmos_predict1/``) with their attention switched
to ``backend="torch"`` (``F.scaled_dot_product_attention``). Importing them needs, beyond torch/einops/loguru/
omegaconf/attrs/megatron-core: **transformer_engine** (``te.pytorch.RMSNorm`` for the q/k and time-embedding norms,
``apply_rotary_pos_emb`` for RoPE, ``DotProductAttention`` constructed but unused with the torch backend) and
**torchvision** (``transforms.functional.resize`` for the token condition and the padding mask), and ``.cuda()``
works only on a CUDA build (the RoPE module's constructor calls it); **iopath** is imported by NVIDIA's config
file I/O on the way. Where those are missing, ``--stub-missing`` puts minimal stand-ins in ``sys.modules`` (fp32
RMSNorm, fp32 rotate-half RoPE, torch ``interpolate`` with torchvision's tensor semantics, inert iopath classes,
``Tensor.cuda`` as identity) and the script says which. The comparison then covers
NVIDIA's module wiring, names, patch/unpatch orders, adaLN/LoRA, token embedding path, RoPE table construction and
attention layout; the stand-ins themselves are not NVIDIA code.

The state dict goes through ``checkpoint.load_dit`` (our released-layout loader) on our side and a strict
``load_state_dict`` on NVIDIA's, so the key names are checked too. Two configs run: ``tiny`` and a head-dim-128
config with the released RoPE table, token embedding width and context width ("head128"); each in fp32 and bf16,
for a conditional and an unconditional input. Prints a table and "PARITY OK" when every max |diff| / max |out| is
below 1e-5 (fp32) and 2e-2 (bf16).
"""

from __future__ import annotations

import argparse
import enum
import importlib
import math
import os
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nemo_cosmos_ar.diffusion_decoder.checkpoint import load_dit  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.config import DiTConfig, get_dit_config  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.fixtures import random_dit_state  # noqa: E402

TOL = {torch.float32: 1e-5, torch.bfloat16: 2e-2}
STUBBED: list[str] = []


def _stub_transformer_engine() -> None:
    class RMSNorm(torch.nn.Module):
        def __init__(self, hidden_size: int, eps: float = 1e-5, **_) -> None:
            super().__init__()
            self.eps = eps
            self.weight = torch.nn.Parameter(torch.ones(hidden_size))

        def forward(self, x):
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)

    class DotProductAttention(torch.nn.Module):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__()

        def forward(self, *args, **kwargs):
            raise RuntimeError("stand-in: switch the attention backend to 'torch'")

    def apply_rotary_pos_emb(t, freqs, tensor_format="sbhd", fused=False, **_):
        if tensor_format not in ("sbhd", "bshd"):
            raise ValueError(tensor_format)
        f = freqs.float() if tensor_format == "sbhd" else freqs.float().transpose(0, 1)
        tf = t.float()
        x1, x2 = tf.chunk(2, dim=-1)
        return (tf * f.cos() + torch.cat([-x2, x1], dim=-1) * f.sin()).to(t.dtype)

    te = types.ModuleType("transformer_engine")
    te_pt = types.ModuleType("transformer_engine.pytorch")
    te_attn = types.ModuleType("transformer_engine.pytorch.attention")
    te_pt.RMSNorm, te_pt.DotProductAttention = RMSNorm, DotProductAttention
    te_attn.DotProductAttention, te_attn.apply_rotary_pos_emb = DotProductAttention, apply_rotary_pos_emb
    te.pytorch, te_pt.attention = te_pt, te_attn
    sys.modules.update(
        {"transformer_engine": te, "transformer_engine.pytorch": te_pt, "transformer_engine.pytorch.attention": te_attn}
    )


def _stub_torchvision() -> None:
    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"

    def resize(img, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
        mode = interpolation.value
        dtype = img.dtype
        x = img if dtype in (torch.float32, torch.float64) else img.float()
        kw = dict(align_corners=False, antialias=antialias) if mode == "bilinear" else {}
        return F.interpolate(x, size=list(size), mode=mode, **kw).to(dtype)

    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")
    fn = types.ModuleType("torchvision.transforms.functional")
    fn.resize, tr.InterpolationMode, tr.functional, tv.transforms = resize, InterpolationMode, fn, tr
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})


def _stub_iopath() -> None:
    # Only imported by NVIDIA's config file I/O (lazy_config/file_io.py registers URL handlers); never called here.
    class _Any:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def register_handler(self, *args, **kwargs) -> None:
            pass

    common = types.ModuleType("iopath.common")
    file_io = types.ModuleType("iopath.common.file_io")
    file_io.HTTPURLHandler = file_io.OneDrivePathHandler = file_io.PathHandler = file_io.PathManager = _Any
    root = types.ModuleType("iopath")
    root.common, common.file_io = common, file_io
    sys.modules.update({"iopath": root, "iopath.common": common, "iopath.common.file_io": file_io})


STUBS = {"transformer_engine": _stub_transformer_engine, "torchvision": _stub_torchvision, "iopath": _stub_iopath}


def import_nvidia(src: Path, stub_missing: bool):
    sys.path.insert(0, str(src))
    if stub_missing:
        # Megatron-Core (imported by NVIDIA's diffusion/module/parallel.py) probes TransformerEngine's package
        # version once at import; importing it before any stand-in exists keeps it on its no-TE path.
        try:
            importlib.import_module("megatron.core.parallel_state")
        except ImportError:
            pass
    for _ in range(len(STUBS) + 1):
        try:
            return importlib.import_module("cosmos_predict1.autoregressive.diffusion_decoder.network")
        except ModuleNotFoundError as err:
            top = (err.name or "").split(".")[0]
            if not stub_missing or top not in STUBS or top in STUBBED:
                print(
                    f"cannot import NVIDIA's modules: missing package {err.name!r}"
                    + ("" if stub_missing else " (rerun with --stub-missing to use stand-ins)")
                )
                sys.exit(2)
            for name in [m for m in sys.modules if m.startswith("cosmos_predict1")]:
                del sys.modules[name]
            STUBS[top]()
            STUBBED.append(top)
    sys.exit(2)


def build_nvidia(mod, cfg: DiTConfig):
    no_cuda = not torch.cuda.is_available()
    orig = torch.Tensor.cuda
    if no_cuda:  # VideoRopePosition3DEmb.__init__ calls .cuda() on two buffers
        torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        ratio_t, ratio_h, ratio_w = cfg.rope_extrapolation
        net = mod.DiffusionDecoderGeneralDIT(
            max_img_h=cfg.max_img_h,
            max_img_w=cfg.max_img_w,
            max_frames=cfg.max_frames,
            in_channels=cfg.latent_channels,
            out_channels=cfg.latent_channels,
            patch_spatial=cfg.patch_spatial,
            patch_temporal=cfg.patch_temporal,
            concat_padding_mask=True,
            block_config="FA-CA-MLP",
            model_channels=cfg.model_channels,
            num_blocks=cfg.num_blocks,
            num_heads=cfg.num_heads,
            mlp_ratio=cfg.mlp_ratio,
            block_x_format="THWBD",
            crossattn_emb_channels=cfg.context_dim,
            use_cross_attn_mask=False,
            pos_emb_cls="rope3d",
            pos_emb_learnable=False,
            pos_emb_interpolation="crop",
            affline_emb_norm=True,
            use_adaln_lora=True,
            adaln_lora_dim=cfg.adaln_lora_dim,
            rope_h_extrapolation_ratio=ratio_h,
            rope_w_extrapolation_ratio=ratio_w,
            rope_t_extrapolation_ratio=ratio_t,
            is_diffusion_decoder=True,
            diffusion_decoder_condition_on_sigma=False,
            diffusion_decoder_condition_on_token=True,
            diffusion_decoder_token_condition_voc_size=cfg.token_vocab_size,
            diffusion_decoder_token_condition_dim=cfg.token_dim,
        )
    finally:
        torch.Tensor.cuda = orig
    attn_cls = importlib.import_module("cosmos_predict1.diffusion.module.attention").Attention
    for m in net.modules():
        if isinstance(m, attn_cls):
            del m.attn_op  # the TransformerEngine op is a child module; the torch backend is a plain function
            m.backend, m.attn_op = "torch", F.scaled_dot_product_attention
    return net.eval()


def compare(mod, name: str, cfg: DiTConfig, grid: tuple[int, int, int]) -> list[tuple]:
    state = random_dit_state(cfg, seed=3)
    for key, value in state.items():
        # Unit-gain linears (std 1/sqrt(fan_in)) instead of the fixtures' 0.02, so that every block, gate and the
        # RoPE move the output well above fp32 rounding: a wrong key or formula cannot hide under the tolerance.
        if value.ndim == 2 and "token_embedder" not in key:
            state[key] = value * (value.shape[1] ** -0.5 / 0.02)
    nv = build_nvidia(mod, cfg)
    missing, unexpected = nv.load_state_dict({k[4:]: v for k, v in state.items()}, strict=False)
    assert not unexpected and all(k.endswith("_extra_state") for k in missing), (missing, unexpected)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / "model.pt")
        ours = load_dit(Path(tmp) / "model.pt", cfg)
    t, h, w = grid
    g = torch.Generator().manual_seed(0)
    sigma = 3.0
    x = torch.randn(1, cfg.latent_channels, t, 2 * h, 2 * w, generator=g) / math.sqrt(sigma**2 + 0.25)
    tokens = torch.randint(0, cfg.token_vocab_size, (1, t, h, w), generator=g)
    ctx = torch.randn(1, 12, cfg.context_dim, generator=g)
    c_noise = torch.tensor(0.25 * math.log(sigma))
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        nv.to(dtype)
        ours.to(dtype)
        for kind, c, tok in (("cond", ctx, tokens), ("uncond", torch.zeros_like(ctx), torch.zeros_like(tokens))):
            with torch.no_grad():
                ref = nv(
                    x=x.to(dtype),
                    timesteps=c_noise.to(dtype),
                    crossattn_emb=c.to(dtype),
                    crossattn_mask=torch.ones(1, c.shape[1], dtype=dtype),
                    fps=torch.tensor([24.0], dtype=dtype),
                    padding_mask=torch.zeros(1, 1, 16 * h, 16 * w, dtype=dtype),
                    latent_condition=tok[:, None].int(),
                )
                got = ours(x.to(dtype), c_noise.to(dtype), c.to(dtype), tok, 24.0)
            diff = (got.float() - ref.float()).abs().max().item()
            scale = ref.float().abs().max().item()
            rows.append((name, str(dtype).split(".")[-1], kind, tuple(ref.shape), diff, scale, diff / scale))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_src = Path(os.environ.get("COSMOS_PREDICT1_SRC", "/work/wt/notes/cosmos-predict1"))
    ap.add_argument("--src", type=Path, default=default_src, help="folder holding NVIDIA's cosmos_predict1 package")
    ap.add_argument("--stub-missing", action="store_true", help="use stand-ins for missing TE/torchvision")
    args = ap.parse_args()
    if not (args.src / "cosmos_predict1").is_dir():
        print(f"{args.src} does not hold cosmos_predict1/; pass --src")
        return 2
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "2"))))
    mod = import_nvidia(args.src, args.stub_missing)
    print(
        f"NVIDIA modules from {args.src}; stand-ins used for: {', '.join(STUBBED) or 'none'}"
        + ("; Tensor.cuda as identity (CPU build)" if not torch.cuda.is_available() else "")
    )
    head128 = DiTConfig(model_channels=256, num_blocks=2, num_heads=2, context_dim=1024, adaln_lora_dim=32)
    rows = compare(mod, "tiny", get_dit_config("tiny"), (8, 4, 6)) + compare(mod, "head128", head128, (8, 4, 6))
    print("| config | dtype | input | output shape | max abs diff | max abs out | ratio |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for name, dt, kind, shape, diff, scale, ratio in rows:
        ok &= ratio < TOL[getattr(torch, dt)]
        print(f"| {name} | {dt} | {kind} | {list(shape)} | {diff:.3e} | {scale:.3e} | {ratio:.2e} |")
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
