"""Where the guardrail weights are under ``--checkpoint-dir``.

Guardrail roots tried, in order: ``<dir>/nvidia/Cosmos-Guardrail1`` (where ``cosmos-ar download`` puts it),
``<dir>/Cosmos-Guardrail1``, then any ``guardrail/`` folder up to three levels down (March-2025 cosmos-predict1 kept
one inside each model repo and found it by a recursive search: ``auxiliary/guardrail/common/presets.py``). Inside a
root: ``video_content_safety_filter/safety_filter.pt`` and ``face_blur_filter/Resnet50_Final.pth``. SigLIP: the first
folder with a SigLIP ``config.json`` and its weights under the root's ``video_content_safety_filter/`` (a Hugging Face
cache ``models--google--siglip-so400m-patch14-384/snapshots/<hash>/`` counts), else
``<dir>/google/siglip-so400m-patch14-384``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SAFETY_FILTER = "video_content_safety_filter/safety_filter.pt"
FACE_DETECTOR = "face_blur_filter/Resnet50_Final.pth"
SIGLIP_LOCAL = "google/siglip-so400m-patch14-384"
HINT = "run `cosmos-ar download` (it fetches nvidia/Cosmos-Guardrail1) or pass --disable-guardrail"


@dataclass(frozen=True)
class GuardrailFiles:
    safety_filter: Path
    face_detector: Path
    siglip_dir: Path


def _guardrail_roots(root: Path, max_depth: int = 3) -> list[Path]:
    roots = [root / "nvidia" / "Cosmos-Guardrail1", root / "Cosmos-Guardrail1"]
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
        if Path(dirpath).name == "guardrail":
            roots.append(Path(dirpath))
    return [r for r in roots if r.is_dir()]


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
    for g in roots:
        if (g / SAFETY_FILTER).is_file() and (g / FACE_DETECTOR).is_file():
            siglip = _find_siglip(g, root)
            if siglip is None:
                raise FileNotFoundError(f"{g / SAFETY_FILTER} has no SigLIP encoder next to it (a siglip config.json "
                                        f"+ weights under {g / 'video_content_safety_filter'} or in "
                                        f"{root / SIGLIP_LOCAL}); {HINT}")  # fmt: skip
            return GuardrailFiles(g / SAFETY_FILTER, g / FACE_DETECTOR, siglip)
    looked = ", ".join(str(p) for p in roots) or f"{root}/nvidia/Cosmos-Guardrail1"
    raise FileNotFoundError(f"no guardrail weights ({SAFETY_FILTER} and {FACE_DETECTOR}) under {root} (looked in "
                            f"{looked}); {HINT}")  # fmt: skip
