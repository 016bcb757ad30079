"""Where the guardrail weights are under ``--checkpoint-dir``.

NVIDIA's layout (cosmos-predict1 ``scripts/download_autoregressive_checkpoints.py``, which ``cosmos-ar download``
follows): each model repo carries a ``guardrail/`` folder, e.g. ``checkpoints/Cosmos-Predict1-4B/guardrail/``, and
cosmos-predict1 finds it by a recursive search under ``--checkpoint_dir`` (``auxiliary/guardrail/common/presets.py``).
So do we: every ``guardrail/`` folder up to three levels down, in sorted order, is a candidate root. Inside a root:
``video_content_safety_filter/safety_filter.pt`` and ``face_blur_filter/Resnet50_Final.pth``. SigLIP: the first
folder with a SigLIP ``config.json`` and its weights under the root's ``video_content_safety_filter/`` (a Hugging Face
cache ``models--google--siglip-so400m-patch14-384/snapshots/<hash>/`` counts), else
``<dir>/google/siglip-so400m-patch14-384`` (where ``cosmos-ar download`` puts SigLIP when the model repo has none).
The first root with all three wins.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SAFETY_FILTER = "video_content_safety_filter/safety_filter.pt"
FACE_DETECTOR = "face_blur_filter/Resnet50_Final.pth"
SIGLIP_LOCAL = "google/siglip-so400m-patch14-384"
HINT = "run `cosmos-ar download` (it puts them in Cosmos-Predict1-<size>/guardrail/) or pass --disable-guardrail"


@dataclass(frozen=True)
class GuardrailFiles:
    safety_filter: Path
    face_detector: Path
    siglip_dir: Path


def _guardrail_roots(root: Path, max_depth: int = 3) -> list[Path]:
    roots = []
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
        if Path(dirpath).name == "guardrail":
            roots.append(Path(dirpath))
            dirnames[:] = []  # its own subfolders are not other roots
    return roots


def _is_siglip(folder: Path) -> bool:
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    has_weights = any((folder / n).is_file() for n in ("model.safetensors", "pytorch_model.bin"))
    return str(cfg.get("model_type", "")).startswith("siglip") and has_weights


def _find_siglip(guardrail_root: Path, root: Path) -> Path | None:
    base = guardrail_root / "video_content_safety_filter"
    if base.is_dir():
        for cfg in sorted(base.rglob("config.json")):
            if _is_siglip(cfg.parent):
                return cfg.parent
    fallback = root / SIGLIP_LOCAL
    return fallback if _is_siglip(fallback) else None


def find_guardrail_files(checkpoint_dir: str | Path) -> GuardrailFiles:
    """Locate the three guardrail inputs; FileNotFoundError with one line naming what is missing otherwise."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such checkpoint folder for the guardrails; {HINT}")
    roots = _guardrail_roots(root)
    complete = [g for g in roots if (g / SAFETY_FILTER).is_file() and (g / FACE_DETECTOR).is_file()]
    for g in complete:
        siglip = _find_siglip(g, root)
        if siglip is not None:
            return GuardrailFiles(g / SAFETY_FILTER, g / FACE_DETECTOR, siglip)
    if complete:
        g = complete[0]
        raise FileNotFoundError(
            f"{g / SAFETY_FILTER} has no SigLIP encoder next to it (a siglip config.json "
            f"+ weights under {g / 'video_content_safety_filter'} or in "
            f"{root / SIGLIP_LOCAL}); {HINT}"
        )
    looked = f"looked in {', '.join(str(p) for p in roots)}" if roots else "no guardrail/ folder up to 3 levels down"
    raise FileNotFoundError(
        f"no guardrail weights ({SAFETY_FILTER} and {FACE_DETECTOR}) under {root} ({looked}); {HINT}"
    )
