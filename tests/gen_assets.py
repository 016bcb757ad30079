"""One tiny fixture set for the ``cosmos-ar generate`` tests (test_generate*.py): built once per session.

``make_assets(root)`` writes a tiny bf16 ``model.pt`` (random weights, released layout), a tiny random tokenizer
folder (decoder + encoder), an 80x120 PNG and a 12-frame 72x112 MP4. At the tiny preset's 64x96 the grid is 5x4x6.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.model.reference import ReferenceTransformer
from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer

GRID = (5, 4, 6)  # 33 frames at the tiny preset's 64x96


def make_assets(root: Path) -> Path:
    cfg = get_preset("tiny")
    ref = ReferenceTransformer(cfg).init_random(seed=0)
    native_io.write_model_pt(root / "model.pt", native_io.iter_native(ref.state_dict(), cfg), cfg)
    write_random_tokenizer(root / "tokenizer", "tiny", seed=0, autoencoder=False)  # decoding needs decoder.jit only
    yy, xx = np.mgrid[0:80, 0:120]
    image = np.stack([(xx * 2) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
    Image.fromarray(image).save(root / "input.png")
    frames = torch.stack([torch.from_numpy(np.roll(image[4:76, 4:116], 6 * i, axis=1).copy()) for i in range(12)])
    video_io.write_video(root / "input.mp4", frames)
    return root


def cli_args(assets: Path, inp, out, *extra: str) -> list[str]:
    """``cosmos-ar generate`` arguments for the tiny assets on CPU."""
    return ["generate", "--model", "tiny", "--checkpoint", str(assets / "model.pt"), "--tokenizer",
            str(assets / "tokenizer"), "--input", str(inp), "--output", str(out), "--device", "cpu",
            *extra]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (inputs must be byte-identical after a failed run)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
