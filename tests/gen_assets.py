"""One tiny fixture set for the ``cosmos-ar generate`` tests (test_generate*.py): built once per session.

``make_assets(root)`` writes a tiny bf16 ``model.pt`` (random weights, released layout), a tiny random tokenizer
folder (decoder + encoder), an 80x120 PNG and a 12-frame 72x112 MP4. At the tiny preset's 64x96 the grid is 5x4x6.
``make_guardrail_weights(root, verdict_class)`` writes tiny guardrail weights (test_guardrails' models) and
``make_diffusion_decoder(root)`` the tiny diffusion decoder, in the layout ``cosmos-ar download`` writes.
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


def tiny_mcore_engine(seed: int):
    """The tiny preset's Megatron decode engine (fp32, CPU, TP=1) holding a random reference model's weights."""
    from nemo_cosmos_ar.inference import engine
    from nemo_cosmos_ar.inference.checkpoints import load_native_state

    cfg = get_preset("tiny").with_latent_shape(GRID)
    ref = ReferenceTransformer(cfg).init_random(seed=seed).eval()
    device = engine.init_parallel(1, torch.device("cpu"))
    model = engine.build_model(cfg, 1, device, torch.float32)
    load_native_state(model, ref.state_dict(), cfg)
    return engine.McoreEngine(model, cfg)


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
    """``cosmos-ar generate`` arguments for the tiny assets on CPU. ``--checkpoint-dir`` is the assets folder (no
    guardrail weights: the run warns that its output is not safety-filtered; no diffusion decoder: the DV8x16x16
    decoder decodes and a note says so), whatever the working folder holds; a later ``--checkpoint-dir`` in
    ``extra`` wins."""
    return [
        "generate",
        "--model",
        "tiny",
        "--checkpoint",
        str(assets / "model.pt"),
        "--tokenizer",
        str(assets / "tokenizer"),
        "--checkpoint-dir",
        str(assets),
        "--input",
        str(inp),
        "--output",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


FACE_LOGIT = 8.0  # the tiny detector's "face" class bias: a face everywhere, so the blur changes pixels
GUARDRAIL_DIR = "Cosmos-Predict1-4B/guardrail"  # NVIDIA's layout: the model repo's guardrail/ folder


def make_guardrail_weights(root: Path, verdict_class: int = 0, faces: bool = True) -> Path:
    """``root`` as a checkpoints folder holding tiny guardrail weights where ``cosmos-ar download`` puts the real
    ones (``GUARDRAIL_DIR``, in the model folder): test_guardrails' tiny SigLIP (a Hugging Face folder) and classifier,
    whose every frame goes to ``verdict_class`` (0 = safe), and its tiny RetinaFace (DataParallel ``module.`` names,
    as released) with the face logit raised on every anchor (lowered with ``faces=False``: no face anywhere). Loading that detector needs the tiny architecture in
    place of the full one (``face_blur.retinaface_resnet50 = test_guardrails.tiny_retinaface``)."""
    from test_guardrails import tiny_retinaface, tiny_safety

    from nemo_cosmos_ar.guardrails import paths

    g = root / GUARDRAIL_DIR
    filt = tiny_safety(verdict_class)
    filt.encoder.save_pretrained(g / "video_content_safety_filter" / "siglip-so400m-patch14-384")
    torch.save({"model": filt.classifier.state_dict()}, g / paths.SAFETY_FILTER)
    state = tiny_retinaface().state_dict()
    for k, v in state.items():
        if k.startswith("ClassHead.") and k.endswith(".bias"):  # (background, face) per anchor
            state[k] = torch.tensor([-FACE_LOGIT, FACE_LOGIT] if faces else [FACE_LOGIT, -FACE_LOGIT]).repeat(
                v.numel() // 2
            )
    (g / paths.FACE_DETECTOR).parent.mkdir(parents=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, g / paths.FACE_DETECTOR)
    return root


def make_diffusion_decoder(root: Path) -> Path:
    """``root`` as a checkpoints folder holding a tiny random-weight diffusion decoder and CV8x8x8 decoder
    (``diffusion_decoder.fixtures``, the released file layouts) where ``cosmos-ar download`` puts the real ones. They
    decode the tiny grid 5x4x6 into 33 frames at 64x96."""
    from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer, write_random_decoder
    from nemo_cosmos_ar.inference.options import CV_TOKENIZER_DIR, DIFFUSION_DECODER_DIR

    write_random_decoder(root / DIFFUSION_DECODER_DIR, "tiny", seed=0)
    write_random_cv_tokenizer(root / CV_TOKENIZER_DIR, "tiny", seed=0)
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (inputs must be byte-identical after a failed run)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
