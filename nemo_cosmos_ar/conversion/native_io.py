"""Read and write cosmos-predict1's native checkpoint formats, tensor by tensor (torch only, no NeMo).

Formats (cosmos-predict1 ``autoregressive/utils/checkpoint.py`` and its shard scripts; docs/conversion.md):

* released ``model.pt``: a flat dict of bf16 tensors, keys ``model.<Transformer key>`` in the order
  ``tok_embeddings, layers.{i}.{attention_norm, attention.wq/wk/wv/wo/q_norm/k_norm, ffn_norm, feed_forward.w1/w3/w2},
  norm, output`` (3 + 11·n_layers keys);
* a training checkpoint ``iter_000001000.pt``: the same state dict under ``ckpt["model"]``;
* TP shards ``<stem>_model_mp_{r}.pt`` (what ``shard_autoregressive_base_checkpoints.py`` writes for ``<stem>.pt``):
  wq/wk/wv/w1/w3/tok_embeddings/output are contiguous row chunks, wo/w2 column chunks, norms replicated;
* a Hugging Face folder: ``config.json`` (cosmos-predict1 ``ModelConfig`` field names), ``model.safetensors`` (the
  native keys without the ``model.`` prefix) and a ``README.md`` model card.

Reading memory-maps (``torch.load(weights_only=True, mmap=True)``, safetensors through ``mmap``), so a 4B file costs
page cache, not heap. Writing streams: the layout (keys, shapes, dtypes) is written first and then one tensor at a
time, so a writer never holds more than the tensor it is given. Every output is written under a temporary name in
the destination folder and renamed into place at the end; an existing output is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import mmap
import pickle
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import torch

from nemo_cosmos_ar.conversion.writers import (  # noqa: F401  (ConversionError, check_free: part of this API)
    _ST_DTYPES,
    ConversionError,
    SafetensorsStreamWriter,
    TorchStreamWriter,
    atomic_outputs,
    check_free,
)
from nemo_cosmos_ar.model.checkpoint_mapping import NATIVE_PREFIX, CheckpointMismatch, check_native, native_shapes
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.presets import PRESETS, as_config, get_preset

SHARD_RE = re.compile(r"^(?P<stem>.+)_model_mp_(?P<rank>\d+)\.pt$")
HF_WEIGHTS, HF_CONFIG, HF_CARD = "model.safetensors", "config.json", "README.md"
ACCEPTED = (
    "the released model.pt, a training checkpoint iter_*.pt (weights under 'model'), TP shards *_model_mp_<r>.pt, "
    "or a Hugging Face folder with config.json + model.safetensors"
)


# ---------------------------------------------------------------------------------------------------------------
# cosmos-predict1 tensor-parallel layout (utils/checkpoint.py obtain_tensor_parallel_state_dict)
# ---------------------------------------------------------------------------------------------------------------
_ROW_CHUNKED = ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "feed_forward.w1.weight",
                "feed_forward.w3.weight", "tok_embeddings.weight", "output.weight")  # fmt: skip
_COLUMN_CHUNKED = ("attention.wo.weight", "feed_forward.w2.weight")


def tp_split_dim(key: str) -> int | None:
    """Dimension cosmos-predict1 chunks ``key`` along under TP (0 rows, 1 columns), None when replicated."""
    if key.endswith(_COLUMN_CHUNKED):
        return 1
    if key.endswith(_ROW_CHUNKED):
        return 0
    return None


def check_tp(cfg: CosmosARConfig, tp: int) -> None:
    """cosmos-predict1 splits whole heads, KV heads, FFN rows and vocab rows; all must divide by ``tp``."""
    dims = {"n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads, "ffn_hidden_size": cfg.ffn_hidden_size,
            "vocab_size": cfg.vocab_size}  # fmt: skip
    bad = [f"{k}={v}" for k, v in dims.items() if v % tp]
    if tp < 1 or bad:
        raise ConversionError(f"cannot shard the {cfg.name!r} model into TP={tp}: {', '.join(bad) or 'tp < 1'} "
                              "not divisible; pick a TP size that divides the head counts, FFN size and vocab")


def merge_tp_shards(shards: Sequence[Mapping[str, torch.Tensor]], files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Inverse of cosmos-predict1's sharding. Replicated (norm) tensors must agree across shards: bit-identical ones
    are taken from shard 0; close ones are averaged as ``merge_tensor_parallel_state_dicts`` does (with a warning)."""
    keys = list(shards[0])
    for f, s in zip(files[1:], shards[1:]):
        if set(s) != set(keys):
            miss, extra = sorted(set(keys) - set(s)), sorted(set(s) - set(keys))
            raise ConversionError(f"TP shard {f} does not have the keys of {files[0]}: missing {miss[:8]}, "
                                  f"extra {extra[:8]}; all shards must come from the same checkpoint")  # fmt: skip
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        parts = [s[k] for s in shards]
        dim = tp_split_dim(k)
        if dim is not None:
            out[k] = torch.cat(parts, dim=dim)
            continue
        if "norm" not in k:
            raise ConversionError(f"TP shards {files[0].name}...: key {k!r} is neither a split weight nor a norm; "
                                  "these are not cosmos-predict1 AR shards")  # fmt: skip
        if all(torch.equal(parts[0], p) for p in parts[1:]):
            out[k] = parts[0]
        elif all(torch.allclose(parts[0].float(), p.float(), atol=5e-2, rtol=0.1) for p in parts[1:]):
            warnings.warn(f"replicated {k} differs across TP shards; averaging like cosmos-predict1 (not bit-exact)")
            out[k] = torch.stack([p.float() for p in parts]).mean(0).to(parts[0].dtype)
        else:
            raise ConversionError(f"replicated tensor {k} differs strongly across TP shards {[f.name for f in files]}")
    return out


def split_tp(key: str, tensor: torch.Tensor, tp: int) -> list[torch.Tensor]:
    """cosmos-predict1's TP chunks of one native tensor, as contiguous tensors (one per rank)."""
    dim = tp_split_dim(key)
    if dim is None:
        return [tensor] * tp
    return [c.contiguous() for c in torch.chunk(tensor, tp, dim=dim)]


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------
def _load_torch_file(path: Path) -> object:
    """``torch.load(weights_only=True, mmap=True)`` with the failure modes turned into one clear message each."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise ConversionError(f"{path} is not a PyTorch checkpoint ({size} bytes, starts with {head!r}; torch.save "
                              f"files are zip archives starting with b'PK'). Pass {ACCEPTED}.")  # fmt: skip
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise ConversionError(f"{path} holds Python objects that torch.load(weights_only=True) refuses ({first}). "
                              "Only plain tensor dicts are read; if you trust the file, re-save its weights with "
                              "torch.save(torch.load(p, weights_only=False)['model'], 'model.pt').") from None
    except (RuntimeError, OSError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise ConversionError(f"{path} is truncated or corrupt ({size:,} bytes; torch: {first}). Copy or download "
                              "it again and compare its size/checksum with the original.") from None


def _state_dict_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The weights in a loaded file: a flat tensor dict, or the dict under ``"model"`` (training checkpoint)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state dict. Pass {ACCEPTED}.")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{path} is not a model state dict: entries {bad[:6]} are not tensors (top-level keys: "
                              f"{list(obj)[:6]}). Pass {ACCEPTED}.")  # fmt: skip
    return dict(obj)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Memory-mapped tensors of a ``.safetensors`` file, in file order (zero-copy where aligned)."""
    dtypes = {v: k for k, v in _ST_DTYPES.items()}
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise ConversionError(f"{path} is not a safetensors file or is truncated ({size:,} bytes, header length "
                                  f"{n}). Copy or export it again.")  # fmt: skip
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConversionError(f"{path}: unreadable safetensors header ({e}); the file is corrupt") from None
        try:
            header.pop("__metadata__", None)
            end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
        except (AttributeError, KeyError, TypeError, IndexError, ValueError):
            raise ConversionError(f"{path}: the safetensors header is not a table of tensors; the file is corrupt. "
                                  "Copy or export it again.") from None
        if 8 + n + end > size:
            raise ConversionError(f"{path} is truncated: the header describes {8 + n + end:,} bytes, the file has "
                                  f"{size:,}. Copy or export it again.")  # fmt: skip
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size else b""
    out: dict[str, torch.Tensor] = {}
    for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if v["dtype"] not in dtypes:
            raise ConversionError(f"{path}: tensor {k} has unsupported dtype {v['dtype']}")
        dtype, (b, e) = dtypes[v["dtype"]], v["data_offsets"]
        if e > b:
            raw = torch.frombuffer(buf, dtype=torch.uint8, count=e - b, offset=8 + n + b)
        else:
            raw = torch.empty(0, dtype=torch.uint8)
        if (8 + n + b) % dtype.itemsize:
            raw = raw.clone()
        out[k] = raw.view(dtype).reshape(v["shape"])
    return out


@dataclass
class NativeCheckpoint:
    """Weights of one native checkpoint (keys without the ``model.`` prefix, file order) and where they came from."""

    tensors: dict[str, torch.Tensor]
    kind: str  # "model.pt" | "training checkpoint" | "TP shards" | "Hugging Face folder"
    files: list[Path]
    config_path: Path | None = None  # a config.json found next to the weights
    tp: int = 1

    @property
    def name(self) -> str:
        first = self.files[0]
        return str(first) if len(self.files) == 1 else f"{first} (+{len(self.files) - 1} shards)"

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.tensors.values())).dtype


def find_shards(first: Path) -> list[Path]:
    """All ``<stem>_model_mp_{r}.pt`` siblings of one shard (or of ``<stem>.pt``), ordered by rank, ranks 0..n-1."""
    m = SHARD_RE.match(first.name)
    stem = m["stem"] if m else first.name.removesuffix(".pt")
    found = {int(p.name[len(stem) + 10 : -3]): p for p in first.parent.glob(f"{stem}_model_mp_*.pt")
             if SHARD_RE.match(p.name) and SHARD_RE.match(p.name)["stem"] == stem}  # fmt: skip
    if not found:
        return []
    missing = [r for r in range(max(found) + 1) if r not in found]
    if missing:
        raise ConversionError(f"TP shards {stem}_model_mp_*.pt in {first.parent}: rank(s) {missing} missing "
                              f"(found {sorted(found)}); every rank 0..tp-1 is needed")  # fmt: skip
    return [found[r] for r in range(len(found))]


def load_native(source: str | Path) -> NativeCheckpoint:
    """Open any native checkpoint (see module docstring); TP shards are merged on the way in."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / HF_WEIGHTS).exists():
            path = path / HF_WEIGHTS
        elif (path / "model.pt").exists():
            path = path / "model.pt"
        elif shards := find_shards(path / "model.pt"):
            path = shards[0]
        elif (path / "weights").is_dir() or (path / "context").is_dir():
            raise ConversionError(f"{path} is a NeMo checkpoint, not a native one: `cosmos-ar convert export "
                                  f"--checkpoint {path}` converts it to model.pt")  # fmt: skip
        else:
            raise FileNotFoundError(f"{path} has no {HF_WEIGHTS}, model.pt or model_model_mp_0.pt. Pass {ACCEPTED}.")
    config_path = path.parent / HF_CONFIG if (path.parent / HF_CONFIG).exists() else None
    if path.suffix == ".safetensors":
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        t = read_safetensors(path)
        return NativeCheckpoint({k.removeprefix(NATIVE_PREFIX): v for k, v in t.items()}, "Hugging Face folder",
                                [path], config_path)  # fmt: skip
    if not path.exists() or SHARD_RE.match(path.name):
        shards = find_shards(path)
        if not shards:
            raise FileNotFoundError(f"{path} does not exist (nor do TP shards {path.stem}_model_mp_<r>.pt next to it)")
        states = [_state_dict_of(_load_torch_file(p), p) for p in shards]
        merged = merge_tp_shards([{k.removeprefix(NATIVE_PREFIX): v for k, v in s.items()} for s in states], shards)
        return NativeCheckpoint(merged, "TP shards", shards, config_path, tp=len(shards))
    obj = _load_torch_file(path)
    kind = "training checkpoint" if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping) else "model.pt"
    state = _state_dict_of(obj, path)
    return NativeCheckpoint({k.removeprefix(NATIVE_PREFIX): v for k, v in state.items()}, kind, [path], config_path)


# ---------------------------------------------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------------------------------------------
SHAPE_FIELDS = ("n_layers", "dim", "n_heads", "n_kv_heads", "head_dim", "ffn_hidden_size", "vocab_size")


def shape_signature(tensors: Mapping[str, torch.Tensor]) -> dict[str, int] | None:
    """The shape-determined architecture fields of a native state dict, or None if the keys are not Cosmos AR."""
    try:
        n_layers = sum(1 for k in tensors if re.fullmatch(r"layers\.\d+\.attention\.wq\.weight", k))
        vocab, dim = tensors["tok_embeddings.weight"].shape
        hd = tensors["layers.0.attention.q_norm.weight"].shape[0]
        return dict(n_layers=n_layers, dim=dim, n_heads=tensors["layers.0.attention.wq.weight"].shape[0] // hd,
                    n_kv_heads=tensors["layers.0.attention.wk.weight"].shape[0] // hd, head_dim=hd,
                    ffn_hidden_size=tensors["layers.0.feed_forward.w1.weight"].shape[0], vocab_size=vocab)  # fmt: skip
    except (KeyError, ValueError, IndexError):
        return None


def preset_for_shapes(tensors: Mapping[str, torch.Tensor]) -> str | None:
    sig = shape_signature(tensors)
    for name in PRESETS:
        p = get_preset(name)
        if sig and all(getattr(p, f) == sig[f] for f in SHAPE_FIELDS):
            return name
    return None


def resolve_config(ckpt: NativeCheckpoint, config: str | Path | CosmosARConfig | None = None) -> CosmosARConfig:
    """The architecture of ``ckpt`` and a check that every tensor fits it.

    ``config`` is a ``CosmosARConfig``, a preset name (tiny, 4b, 12b) or a cosmos-predict1 style ``config.json``.
    Without it: the ``config.json`` next to the weights, else the preset whose shapes the weights have. Raises
    ``CheckpointMismatch`` (listing each offending key with expected and found shape) before anything is written.
    """
    if config is not None:
        cfg = as_config(config)
    elif ckpt.config_path is not None and _is_cosmos_config(ckpt.config_path):
        cfg = CosmosARConfig.from_json(str(ckpt.config_path))
    elif name := preset_for_shapes(ckpt.tensors):
        cfg = get_preset(name)
    else:
        sig = shape_signature(ckpt.tensors)
        raise CheckpointMismatch(
            f"cannot tell the architecture of {ckpt.name}: "
            + (f"its shapes {sig} match no preset ({', '.join(PRESETS)})" if sig else "it has no Cosmos AR keys "
               f"(first keys: {list(ckpt.tensors)[:5]})")
            + ". Pass the model's config.json (--config) or a preset (--model)."
        )  # fmt: skip
    if cfg.name == "custom" and (name := _matching_preset(cfg)):
        cfg.name = name
    try:
        check_native(ckpt.tensors, cfg, source=f"{ckpt.name} ({ckpt.kind})")
    except CheckpointMismatch as e:
        hints = []
        if (name := preset_for_shapes(ckpt.tensors)) and name != cfg.name:
            hints.append(f"The weights have the shapes of the {name!r} preset.")
        if any("cross_attention" in k for k in ckpt.tensors):
            hints.append("Cross-attention keys: Video2World (5B/13B) checkpoints are not supported by this converter.")
        # one line: the problems joined by "; ", at most 6 shape mismatches
        head, *rest = [line.strip() for line in str(e).splitlines() if line.strip()]
        shapes = [r for r in rest if ": expected " in r]
        rest = [r for r in rest if ": expected " not in r and r != "shape mismatches:"]
        if shapes:
            rest.insert(0, "shape mismatches: " + ", ".join(shapes[:6]) + (" ..." if len(shapes) > 6 else ""))
        raise CheckpointMismatch(" ".join([head, "; ".join(rest), *hints])) from None
    return cfg


_COSMOS_KEYS = ("n_layers", "n_heads", "n_kv_heads", "ffn_hidden_size", "video_latent_shape")


def _is_cosmos_config(path: Path) -> bool:
    """A released folder may carry an unrelated config.json; one with any cosmos ModelConfig field counts (and is
    then checked field by field). One that is not a JSON object at all is an error, never silently skipped: the
    architecture would otherwise come from a guess."""
    fix = "fix or remove it, or name the architecture with --config/--model"
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path} next to the weights is not valid JSON ({str(e).splitlines()[0]}); {fix}") from None
    except OSError as e:
        raise ConversionError(f"{path} next to the weights cannot be read ({e.strerror or e}); {fix}") from None
    if not isinstance(d, dict):
        raise ConversionError(f"{path} next to the weights holds a JSON {type(d).__name__}, not an object of "
                              f"config fields; {fix}")  # fmt: skip
    return any(k in d for k in _COSMOS_KEYS)


def _matching_preset(cfg: CosmosARConfig) -> str | None:
    for name in PRESETS:
        if get_preset(name) == cfg:
            return name
    return None


def config_json(cfg: CosmosARConfig, dtype: torch.dtype = torch.bfloat16) -> dict:
    """``config.json`` content: cosmos-predict1 ``ModelConfig`` field names plus a few descriptive fields."""
    d = cfg.to_dict()
    d.update(model_type="cosmos_predict1_ar", architectures=["CosmosPredict1AR"], preset=cfg.name,
             torch_dtype=str(dtype).removeprefix("torch."))  # fmt: skip
    return d


# ---------------------------------------------------------------------------------------------------------------
# Native outputs
# ---------------------------------------------------------------------------------------------------------------
def native_layout(cfg: CosmosARConfig, dtype: torch.dtype = torch.bfloat16, prefix: str = "") -> list:
    return [(prefix + k, shape, dtype) for k, shape in native_shapes(cfg).items()]


def iter_native(tensors: Mapping[str, torch.Tensor], cfg: CosmosARConfig) -> Iterator[tuple[str, torch.Tensor]]:
    """A full native state dict (no prefix) as ``(key, tensor)`` in the released order."""
    for k in native_shapes(cfg):
        yield k, tensors[k]


def shard_paths(path: Path, tp: int) -> list[Path]:
    """``dir/model.pt`` -> ``dir/model_model_mp_{r}.pt``, the names cosmos-predict1's shard script and TP
    checkpointer use."""
    return [path.with_name(f"{path.stem}_model_mp_{r}.pt") for r in range(tp)]


def _write_pt_files(paths: Sequence[Path], tensors: Iterable[tuple[str, torch.Tensor]], cfg: CosmosARConfig,
                    tp: int, dtype: torch.dtype, labels: Sequence[Path]) -> None:  # fmt: skip
    if tp > 1:
        check_tp(cfg, tp)
    full = native_shapes(cfg)
    layouts = [[(NATIVE_PREFIX + k, _tp_shape(k, s, tp), dtype) for k, s in full.items()] for _ in range(tp)]
    writers = [TorchStreamWriter(p, lay, label) for p, lay, label in zip(paths, layouts, labels)]
    for key, t in tensors:
        if key not in full or tuple(t.shape) != full[key]:
            want = list(full[key]) if key in full else "no such key"
            raise ConversionError(f"{labels[0]}: tensor {key} {list(t.shape)} does not fit the {cfg.name!r} layout "
                                  f"({want})")  # fmt: skip
        for w, part in zip(writers, split_tp(key, t, tp)):
            w.write(NATIVE_PREFIX + key, part)
    for w in writers:
        w.close()


def _tp_shape(key: str, shape: tuple[int, ...], tp: int) -> tuple[int, ...]:
    dim = tp_split_dim(key)
    if dim is None or tp == 1:
        return shape
    return tuple(s // tp if i == dim else s for i, s in enumerate(shape))


def write_model_pt(path: str | Path, tensors: Iterable[tuple[str, torch.Tensor]], cfg: CosmosARConfig, *,
                   overwrite: bool = False, dtype: torch.dtype = torch.bfloat16) -> Path:  # fmt: skip
    """One flat ``model.pt`` in the released layout: ``model.``-prefixed keys, released order, ``dtype`` (bf16)."""
    path = Path(path)
    with atomic_outputs([path], overwrite) as (tmp,):
        _write_pt_files([tmp], tensors, cfg, 1, dtype, [path])
    return path


def write_tp_shards(path: str | Path, tensors: Iterable[tuple[str, torch.Tensor]], cfg: CosmosARConfig, tp: int, *,
                    overwrite: bool = False, dtype: torch.dtype = torch.bfloat16) -> list[Path]:  # fmt: skip
    """cosmos-predict1 TP shards for ``path`` (``model.pt`` -> ``model_model_mp_{r}.pt``), contiguous tensors."""
    check_tp(cfg, tp)
    finals = shard_paths(Path(path), tp)
    with atomic_outputs(finals, overwrite) as temps:
        _write_pt_files(temps, tensors, cfg, tp, dtype, finals)
    return finals


def write_native_dir(folder: str | Path, tensors: Iterable[tuple[str, torch.Tensor]], cfg: CosmosARConfig, *,
                     tp: int = 1, overwrite: bool = False, dtype: torch.dtype = torch.bfloat16) -> Path:  # fmt: skip
    """A folder with ``model.pt`` (tp=1) or ``model_model_mp_{r}.pt`` (tp>1) and ``config.json``."""
    folder = Path(folder)
    if tp > 1:
        check_tp(cfg, tp)
    with atomic_outputs([folder], overwrite, directory=True) as (tmp,):
        (tmp / HF_CONFIG).write_text(json.dumps(config_json(cfg, dtype), indent=2) + "\n")
        names = shard_paths(Path("model.pt"), tp) if tp > 1 else [Path("model.pt")]
        _write_pt_files([tmp / n for n in names], tensors, cfg, tp, dtype, [folder / n for n in names])
    return folder


def export_native(output: str | Path, tensors: Iterable[tuple[str, torch.Tensor]], cfg: CosmosARConfig, *,
                  tp: int = 1, overwrite: bool = False, dtype: torch.dtype = torch.bfloat16) -> list[Path]:  # fmt: skip
    """``output`` ending in ``.pt``: that file (tp=1) or its shards next to it; otherwise a folder (see
    ``write_native_dir``). Returns the written paths."""
    output = Path(output)
    if output.suffix == ".pt":
        return write_tp_shards(output, tensors, cfg, tp, overwrite=overwrite, dtype=dtype) if tp > 1 else \
            [write_model_pt(output, tensors, cfg, overwrite=overwrite, dtype=dtype)]  # fmt: skip
    return [write_native_dir(output, tensors, cfg, tp=tp, overwrite=overwrite, dtype=dtype)]


def write_hf(folder: str | Path, tensors: Iterable[tuple[str, torch.Tensor]], cfg: CosmosARConfig, *,
             overwrite: bool = False, dtype: torch.dtype = torch.bfloat16, source: str = "") -> Path:  # fmt: skip
    """A Hugging Face folder: ``config.json``, ``model.safetensors`` (native keys, no prefix) and ``README.md``."""
    folder = Path(folder)
    with atomic_outputs([folder], overwrite, directory=True) as (tmp,):
        (tmp / HF_CONFIG).write_text(json.dumps(config_json(cfg, dtype), indent=2) + "\n")
        (tmp / HF_CARD).write_text(model_card(cfg, source))
        meta = {"format": "pt", "cosmos_ar_preset": cfg.name}
        w = SafetensorsStreamWriter(tmp / HF_WEIGHTS, native_layout(cfg, dtype), meta, label=folder / HF_WEIGHTS)
        try:
            for k, t in tensors:
                w.write(k, t)
        except BaseException:
            w.close(check=False)
            raise
        w.close()
    return folder


def model_card(cfg: CosmosARConfig, source: str = "") -> str:
    yarn = (f"YaRN scale {cfg.yarn_scale:g} over the original latent grid {list(cfg.original_latent_shape or [])}"
            if cfg.apply_yarn else "no YaRN")  # fmt: skip
    return f"""---
license: other
license_name: nvidia-open-model-license
license_link: https://www.nvidia.com/en-us/agreements/enterprise-software/nvidia-open-model-license
library_name: nemo_cosmos_ar
pipeline_tag: video-to-video
tags: [cosmos, cosmos-predict1, world-model, autoregressive, video]
---

# Cosmos-Predict1 autoregressive world model ({cfg.name})

A Cosmos-Predict1 AR transformer over Cosmos-Tokenize1-DV8x16x16 video tokens, in the checkpoint layout of
[cosmos-predict1](https://github.com/nvidia-cosmos/cosmos-predict1) (`model.safetensors` holds the keys of its
`model.pt` without the `model.` prefix, bf16).

| | |
|---|---|
| layers / hidden / FFN | {cfg.n_layers} / {cfg.dim} / {cfg.ffn_hidden_size} (SwiGLU) |
| heads / KV heads / head dim | {cfg.n_heads} / {cfg.n_kv_heads} / {cfg.head_dim} (QK RMSNorm) |
| vocab | {cfg.vocab_size} |
| position | 3D RoPE theta {cfg.rope_theta:g}, latent grid {list(cfg.latent_shape)}, {yarn} |
| parameters | {cfg.num_params():,} |

{f"Converted from `{source}` with nemo_cosmos_ar." if source else "Written by nemo_cosmos_ar."}

## Use

```bash
cosmos-ar convert import --source <this folder> --output <nemo checkpoint>       # NeMo / Megatron-Core
cosmos-ar convert export --checkpoint <nemo checkpoint> --format pt --output <dir> # back to cosmos-predict1 model.pt
```

Released under the terms of the original model's license (NVIDIA Open Model License).
"""
