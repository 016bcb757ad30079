"""Load released guardrail weights into our modules: ``torch.load(weights_only=True)`` (the files come from the
network), the container and ``module.`` prefixes the released files use, and one-line errors for a wrong file."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn


class GuardrailWeightsError(ValueError):
    """A guardrail weights file that cannot be used; the message names the file, the key and what to do."""


HINT = "re-fetch it with `cosmos-ar download` (into Cosmos-Predict1-<size>/guardrail/) or pass --disable-guardrail"


def read_state_dict(
    path: str | Path, *, containers: tuple[str, ...] = ("model", "state_dict"), strip: tuple[str, ...] = ("module.",)
) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: unwrapped from a ``{"model": ...}`` / ``{"state_dict": ...}`` container, with
    DataParallel's ``module.`` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; {HINT}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first = " ".join(str(err).split())[:200]
        raise GuardrailWeightsError(f"{path}: not a weights-only PyTorch checkpoint ({first}); {HINT}") from err
    for key in containers:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GuardrailWeightsError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}; {HINT}")
    out = {}
    for k, v in obj.items():
        for prefix in strip:
            k = k.removeprefix(prefix)
        out[k] = v
    return out


def check_tensors(
    path: str | Path, expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str
) -> None:
    """Every key of ``expected`` is in ``state`` with its shape; GuardrailWeightsError with one line otherwise."""
    missing = [k for k in expected if k not in state]
    if missing:
        raise GuardrailWeightsError(
            f"{path}: {len(missing)} of the {len(expected)} tensors of the {what} are missing, "
            f"first '{missing[0]}'; is this the right file? {HINT}"
        )
    for k, ref in expected.items():
        if tuple(state[k].shape) != tuple(ref.shape):
            raise GuardrailWeightsError(
                f"{path}: '{k}' has shape {tuple(state[k].shape)}, the {what} needs "
                f"{tuple(ref.shape)}; is this the right file? {HINT}"
            )


def load_released_weights(module: nn.Module, path: str | Path, *, what: str, **kw) -> nn.Module:
    """Load ``path`` into ``module``: every key the module has must be there with its shape; extra keys are
    ignored (a released file may carry more than we run). Raises GuardrailWeightsError with one line otherwise."""
    state = read_state_dict(path, **kw)
    expected = module.state_dict()
    check_tensors(path, expected, state, what)
    module.load_state_dict({k: state[k] for k in expected}, strict=True)
    return module
