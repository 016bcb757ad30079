"""Video guardrails of cosmos-predict1's base-model pipeline (``cosmos_predict1/auxiliary/guardrail/``;
docs/guardrails.md), for ``cosmos-ar generate``:

* ``check_video(frames, classifier) -> Verdict``: the video content safety filter (SigLIP + a small MLP over frames
  sampled at 2 fps); an unsafe video must not be written.
* ``blur_faces(frames, detector) -> frames``: RetinaFace detections on every frame, each face pixelated.
* ``VideoGuardrails``: both, loaded from ``--checkpoint-dir`` with offload support (``runner`` shows the two-line
  integration).

Text guardrails (Blocklist, Aegis/LlamaGuard) screen text prompts, which the base models do not take: not here.
Torch is imported lazily by the submodules, so importing this package is cheap; transformers is not used (SigLIP's
vision tower and preprocessing are in ``siglip``).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Verdict": "safety",
    "FrameVerdict": "safety",
    "VideoSafetyFilter": "safety",
    "SafetyClassifier": "safety",
    "check_video": "safety",
    "load_safety_filter": "safety",
    "CLASS_NAMES": "safety",
    "FaceDetector": "face_blur",
    "blur_faces": "face_blur",
    "pixelate_boxes": "face_blur",
    "load_face_detector": "face_blur",
    "SiglipVisionTower": "siglip",
    "SiglipPreprocess": "siglip",
    "load_siglip_vision": "siglip",
    "RetinaFace": "retinaface",
    "RetinaFaceConfig": "retinaface",
    "VideoGuardrails": "runner",
    "GuardrailResult": "runner",
    "GuardrailFiles": "paths",
    "find_guardrail_files": "paths",
    "GuardrailWeightsError": "weights",
    "load_released_weights": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nemo_cosmos_ar.guardrails.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nemo_cosmos_ar.guardrails' has no attribute {name!r}")
