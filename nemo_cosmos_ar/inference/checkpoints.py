"""Every checkpoint the project makes or reads, loaded straight into the Megatron-Core model at the generate TP.

* cosmos-predict1's formats (``conversion.native_io.load_native``): the released ``model.pt``, a training
  ``iter_*.pt``, TP shards ``*_model_mp_<r>.pt`` (any count: merged, then cut again for this run's TP) and a Hugging
  Face folder. Mapped to Megatron names with ``model.checkpoint_mapping`` and cut with Megatron's TP layout.
* the NeMo distributed checkpoint a post-training run writes (``.../checkpoints/step=N-last``, or the ``checkpoints``
  folder itself: its newest ``-last`` step). The weights are read by Megatron-Core's ``dist_checkpointing.load`` into
  the model's own sharded state dict, so a checkpoint saved at any TP loads at any TP; the architecture comes from
  the plain YAML NeMo writes next to it (``context/model.yaml``). Neither step imports NeMo.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.conversion.architecture import preset_for_shapes, resolve_config, same_shapes
from nemo_cosmos_ar.conversion.nemo_reader import MODULE_PREFIX, read_context_config
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.checkpoint_mapping import CheckpointMismatch, native_shapes
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.presets import PRESETS, as_config
from nemo_cosmos_ar.model.reference import ReferenceTransformer

_STEP_RE = re.compile(r"step=(\d+)")


def nemo_checkpoint_dir(path: str | Path) -> Path | None:
    """The NeMo checkpoint folder (holding ``weights/.metadata``) that ``path`` names, or None if it names none.

    ``path`` may be the step folder, its ``weights`` folder, or a run's ``checkpoints`` folder (then the step folder
    with the highest step, preferring ``-last`` ones, as NeMo's resume does).
    """
    p = Path(path)
    if (p / "weights" / ".metadata").is_file():
        return p
    if p.name == "weights" and (p / ".metadata").is_file():
        return p.parent
    if not p.is_dir():
        return None
    steps = [c for c in p.iterdir() if (c / "weights" / ".metadata").is_file() and "unfinished" not in c.name]
    if not steps:
        return None

    def key(c: Path) -> tuple[int, int]:
        m = _STEP_RE.search(c.name)
        return (int(m[1]) if m else -1, c.name.endswith("-last"))

    return max(steps, key=key)


@dataclass
class Checkpoint:
    """An opened checkpoint: its architecture, and how to fill a Megatron model with it.

    Attributes:
        cfg: the architecture (``latent_shape`` as stored: the training grid for a NeMo checkpoint).
        kind: "NeMo checkpoint" or a ``NativeCheckpoint.kind``.
        name: the path(s), for messages.
        vocab_rows: embedding rows as stored (Megatron may have padded the vocabulary).
    """

    cfg: CosmosARConfig
    kind: str
    name: str
    vocab_rows: int
    _native: native_io.NativeCheckpoint | None = None
    _nemo: Path | None = None

    def with_latent_shape(self, grid: tuple[int, int, int]) -> Checkpoint:
        return replace(self, cfg=self.cfg.with_latent_shape(grid))

    def load_into(self, model) -> None:
        """Copy this TP rank's part of every weight into ``model`` (a ``GPTModel`` built for ``self.cfg``)."""
        if self._nemo is not None:
            _load_nemo(model, self._nemo)
        else:
            load_native_state(model, self._native.tensors, self.cfg)

    def native_state(self) -> dict[str, torch.Tensor]:
        """The full native state dict (keys without ``model.``), for the plain-PyTorch reference transformer."""
        if self._native is not None:
            return self._native.tensors
        raise ValueError(
            f"{self.name} is a NeMo checkpoint; the reference engine reads native checkpoints only "
            "(export it with `cosmos-ar convert export`, or use the default engine)"
        )


def open_checkpoint(path: str | Path, model: str | CosmosARConfig | None = None) -> Checkpoint:
    """Open ``path`` (any format in the module doc) and check it against ``model`` (preset, config.json, config).

    Raises:
        FileNotFoundError: nothing there. ``CheckpointMismatch``: the weights do not fit ``model``.
    """
    ckpt = nemo_checkpoint_dir(path)
    if ckpt is not None:
        cfg = read_context_config(ckpt)
        if model is not None:
            want = requested_config(model)
            if not same_shapes(want, cfg):
                raise cm.CheckpointMismatch(
                    f"{ckpt} holds a {cfg.name!r} model ({cfg.n_layers} layers, dim {cfg.dim}), not the requested "
                    f"{want.name!r} ({want.n_layers} layers, dim {want.dim}); drop --model"
                )
        return Checkpoint(cfg, "NeMo checkpoint", str(ckpt), _nemo_vocab_rows(ckpt, cfg), _nemo=ckpt)
    native = native_io.load_native(path)
    cfg = resolve_native(native, model)
    return Checkpoint(cfg, native.kind, native.name, cfg.vocab_size, _native=native)


def _nemo_vocab_rows(ckpt: Path, cfg: CosmosARConfig) -> int:
    from torch.distributed.checkpoint import FileSystemReader

    try:
        md = FileSystemReader(str(ckpt / "weights")).read_metadata()
    except Exception as err:  # a truncated or foreign .metadata: name the file, not the pickle error
        raise ValueError(
            f"cannot read {ckpt / 'weights' / '.metadata'} ({type(err).__name__}); the checkpoint "
            "is incomplete or not a NeMo distributed checkpoint"
        ) from None
    emb = md.state_dict_metadata.get(MODULE_PREFIX + "embedding.word_embeddings.weight")
    if emb is None or not hasattr(emb, "size") or list(emb.size)[1:] != [cfg.dim]:
        raise ValueError(
            f"{ckpt / 'weights'} holds no Cosmos AR embedding [vocab, {cfg.dim}]; is it a checkpoint of this model?"
        )
    return int(emb.size[0])


def _load_nemo(model, ckpt: Path) -> None:
    from megatron.core import dist_checkpointing

    sharded = model.sharded_state_dict(prefix=MODULE_PREFIX)
    loaded = dist_checkpointing.load(sharded, str(ckpt / "weights"))
    state = {k[len(MODULE_PREFIX) :]: v for k, v in loaded.items() if k.startswith(MODULE_PREFIX)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise ValueError(f"{ckpt}: weights did not load (missing {missing[:4]}, unexpected {unexpected[:4]})")


@torch.no_grad()
def load_native_state(model, tensors: dict[str, torch.Tensor], cfg: CosmosARConfig) -> None:
    """Copy this TP rank's part of a full native state dict (keys without ``model.``) into a ``GPTModel``.

    One Megatron tensor at a time, on the model's device: each native tensor is moved there first, then fused
    (QKV, fc1) and cut for this rank there. Why: with the whole 4B fused and cut on the host first, the AR load took
    5.4 s per rank at TP=2 against 2.0 s at TP=1 (BENCHMARKS.md, issue 13); on a GPU these are device copies, and
    only one fused tensor exists at a time."""
    from megatron.core import parallel_state

    params = dict(model.named_parameters())
    spec = cm.layer_spec_of(params)
    tp, rank = parallel_state.get_tensor_model_parallel_world_size(), parallel_state.get_tensor_model_parallel_rank()
    device = next(iter(params.values())).device
    placed = _Placed(tensors, device)
    seen = set()
    for key, value in cm.iter_native_to_mcore(placed, cfg, spec):
        if key not in params:
            raise ValueError(f"the native weights map to {key}, which the model does not have")
        part = cm.mcore_tp_slice(key, value, tp, rank)
        if part.shape != params[key].shape:
            raise ValueError(f"{key}: this rank's slice is {list(part.shape)}, the model has {list(params[key].shape)}")
        params[key].copy_(part)
        seen.add(key)
    if seen != set(params):
        raise ValueError(
            f"the native weights map to {len(seen)} Megatron tensors, the model has {len(params)} "
            f"(differ: {sorted(set(params) ^ seen)[:4]})"
        )


class _Placed(Mapping):
    """A read-only view of a state dict whose values are moved to ``device`` when read (no copy on their own device)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], device: torch.device) -> None:
        self._tensors, self._device = tensors, device

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._tensors[key].to(self._device)

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


# ---------------------------------------------------------------------------------------------------------------
# Native checkpoints and the plain-PyTorch reference transformer
# ---------------------------------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path, model: str | CosmosARConfig | None = None) -> tuple[CosmosARConfig, dict]:
    """Open a native checkpoint (memory-mapped, ``weights_only=True``) and check it against an architecture.

    Args:
        path: ``model.pt`` (flat dict with ``model.`` keys), a training ``iter_*.pt``, TP shards or a Hugging Face
            folder -- whatever ``conversion.native_io.load_native`` reads.
        model: a preset name (tiny, 4b, 12b), a cosmos-predict1 ``config.json`` path, a ``CosmosARConfig``, or None
            (a ``config.json`` next to the weights, else the preset whose shapes the weights have).

    Returns:
        ``(config, state dict without the "model." prefix)``; tensors stay memory-mapped in their stored dtype.

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointMismatch: the weights do not fit; the one-line message names the first offending key, its shape
            and the expected one.
    """
    ckpt = native_io.load_native(path)
    return resolve_native(ckpt, model), ckpt.tensors


def resolve_native(ckpt: native_io.NativeCheckpoint, model: str | CosmosARConfig | None) -> CosmosARConfig:
    """The architecture of an opened native checkpoint (``model``, else its config.json, else its shapes' preset)."""
    requested = requested_config(model) if model is not None else None
    try:
        return resolve_config(ckpt, requested)
    except CheckpointMismatch as err:
        raise CheckpointMismatch(_one_line_mismatch(ckpt, requested, err)) from None


def requested_config(model: str | CosmosARConfig) -> CosmosARConfig:
    """``--model``: a preset name (tiny, 4b, 12b), a cosmos-predict1 ``config.json`` path, or a config as is
    (``presets.as_config``), with a message naming both forms when it is neither."""
    try:
        return as_config(model)
    except ValueError:
        if Path(str(model)).is_file():  # a config.json that cannot be read: as_config's message names the file
            raise
        raise ValueError(
            f"--model {model!r} is neither a preset ({', '.join(PRESETS)}) nor a config.json file"
        ) from None


def _one_line_mismatch(ckpt: native_io.NativeCheckpoint, cfg: CosmosARConfig | None, err: CheckpointMismatch) -> str:
    """``check_native``'s multi-line report as one line: the first wrong key with both shapes, and a hint."""
    if cfg is None:  # the architecture came from a config.json next to the weights, or from no preset at all
        return " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    want = native_shapes(cfg)
    wrong = [k for k, s in want.items() if k in ckpt.tensors and tuple(ckpt.tensors[k].shape) != s]
    missing = [k for k in want if k not in ckpt.tensors]
    if wrong:
        k = wrong[0]
        what = (
            f"tensor {k} has shape {list(ckpt.tensors[k].shape)}, the {cfg.name!r} model expects {list(want[k])} "
            f"({len(wrong)} of {len(want)} tensors differ in shape, {len(missing)} missing)"
        )
    elif missing:
        what = f"key {missing[0]} (expected shape {list(want[missing[0]])}) is missing ({len(missing)} keys missing)"
    else:
        extra = [k for k in ckpt.tensors if k not in want]
        what = f"unexpected key {extra[0] if extra else '?'} ({len(extra)} unexpected)"
    hint = preset_for_shapes(ckpt.tensors)
    hint = f"; the weights have the shapes of the {hint!r} preset (--model {hint})" if hint and hint != cfg.name else ""
    return f"{ckpt.name} does not fit the {cfg.name!r} architecture: {what}{hint}"


def build_reference(
    cfg: CosmosARConfig, state: dict, device: torch.device | str, dtype: torch.dtype
) -> ReferenceTransformer:
    """The reference transformer holding ``state``, on ``device`` in ``dtype``, eval mode, no grad.

    Built on the meta device and filled with ``assign=True``: no random initialisation and no second full copy of
    the weights on the host before they move to ``device``.
    """
    with torch.device("meta"):
        model = ReferenceTransformer(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_reference(
    path: str | Path,
    model: str | CosmosARConfig | None = None,
    *,
    latent_shape: tuple[int, int, int] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ReferenceTransformer:
    """``read_checkpoint`` + ``build_reference``; ``latent_shape`` sets the grid to generate (default: the config's)."""
    cfg, state = read_checkpoint(path, model)
    if latent_shape is not None:
        cfg = cfg.with_latent_shape(latent_shape)
    return build_reference(cfg, state, device, dtype)
