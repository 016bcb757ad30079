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
Which architecture a checkpoint holds is ``architecture.py``'s business, how TP shards split ``tp_layout.py``'s.
"""

from __future__ import annotations

import json
import mmap
import pickle
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import torch

from nemo_cosmos_ar.conversion.tp_layout import check_tp, merge_tp_shards, split_tp, tp_shape
from nemo_cosmos_ar.conversion.writers import (
    _ST_DTYPES,
    ConversionError,
    TorchStreamWriter,
    atomic_outputs,
    write_safetensors,
)
from nemo_cosmos_ar.model.checkpoint_mapping import NATIVE_PREFIX, native_shapes
from nemo_cosmos_ar.model.config import CosmosARConfig

SHARD_RE = re.compile(r"^(?P<stem>.+)_model_mp_(?P<rank>\d+)\.pt$")
HF_WEIGHTS, HF_CONFIG, HF_CARD = "model.safetensors", "config.json", "README.md"
ACCEPTED = (
    "the released model.pt, a training checkpoint iter_*.pt (weights under 'model'), TP shards *_model_mp_<r>.pt, "
    "or a Hugging Face folder with config.json + model.safetensors"
)


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------
def _load_torch_file(path: Path) -> object:
    """``torch.load(weights_only=True, mmap=True)`` with the failure modes turned into one clear message each."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise ConversionError(
            f"{path} is not a PyTorch checkpoint ({size} bytes, starts with {head!r}; torch.save "
            f"files are zip archives starting with b'PK'). Pass {ACCEPTED}."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise ConversionError(
            f"{path} holds Python objects that torch.load(weights_only=True) refuses ({first}). "
            "Only plain tensor dicts are read; if you trust the file, re-save its weights with "
            "torch.save(torch.load(p, weights_only=False)['model'], 'model.pt')."
        ) from None
    except (RuntimeError, OSError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise ConversionError(
            f"{path} is truncated or corrupt ({size:,} bytes; torch: {first}). Copy or download "
            "it again and compare its size/checksum with the original."
        ) from None


def _state_dict_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The weights in a loaded file: a flat tensor dict, or the dict under ``"model"`` (training checkpoint)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state dict. Pass {ACCEPTED}.")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(
            f"{path} is not a model state dict: entries {bad[:6]} are not tensors (top-level keys: "
            f"{list(obj)[:6]}). Pass {ACCEPTED}."
        )
    return dict(obj)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Memory-mapped tensors of a ``.safetensors`` file, in file order (zero-copy where aligned)."""
    dtypes = {v: k for k, v in _ST_DTYPES.items()}
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise ConversionError(
                f"{path} is not a safetensors file or is truncated ({size:,} bytes, header length "
                f"{n}). Copy or export it again."
            )
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConversionError(f"{path}: unreadable safetensors header ({e}); the file is corrupt") from None
        try:
            header.pop("__metadata__", None)
            end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
        except (AttributeError, KeyError, TypeError, IndexError, ValueError):
            raise ConversionError(
                f"{path}: the safetensors header is not a table of tensors; the file is corrupt. "
                "Copy or export it again."
            ) from None
        if 8 + n + end > size:
            raise ConversionError(
                f"{path} is truncated: the header describes {8 + n + end:,} bytes, the file has "
                f"{size:,}. Copy or export it again."
            )
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
    found = {
        int(p.name[len(stem) + 10 : -3]): p
        for p in first.parent.glob(f"{stem}_model_mp_*.pt")
        if SHARD_RE.match(p.name) and SHARD_RE.match(p.name)["stem"] == stem
    }
    if not found:
        return []
    missing = [r for r in range(max(found) + 1) if r not in found]
    if missing:
        raise ConversionError(
            f"TP shards {stem}_model_mp_*.pt in {first.parent}: rank(s) {missing} missing "
            f"(found {sorted(found)}); every rank 0..tp-1 is needed"
        )
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
            raise ConversionError(
                f"{path} is a NeMo checkpoint, not a native one: `cosmos-ar convert export "
                f"--checkpoint {path}` converts it to model.pt"
            )
        else:
            raise FileNotFoundError(f"{path} has no {HF_WEIGHTS}, model.pt or model_model_mp_0.pt. Pass {ACCEPTED}.")
    config_path = path.parent / HF_CONFIG if (path.parent / HF_CONFIG).exists() else None
    if path.suffix == ".safetensors":
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        t = read_safetensors(path)
        return NativeCheckpoint(
            {k.removeprefix(NATIVE_PREFIX): v for k, v in t.items()}, "Hugging Face folder", [path], config_path
        )
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
# Native outputs
# ---------------------------------------------------------------------------------------------------------------
def config_json(cfg: CosmosARConfig, dtype: torch.dtype = torch.bfloat16) -> dict:
    """``config.json`` content: cosmos-predict1 ``ModelConfig`` field names plus a few descriptive fields."""
    d = cfg.to_dict()
    d.update(
        model_type="cosmos_predict1_ar",
        architectures=["CosmosPredict1AR"],
        preset=cfg.name,
        torch_dtype=str(dtype).removeprefix("torch."),
    )
    return d


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


def _write_pt_files(
    paths: Sequence[Path],
    tensors: Iterable[tuple[str, torch.Tensor]],
    cfg: CosmosARConfig,
    tp: int,
    dtype: torch.dtype,
    labels: Sequence[Path],
) -> None:
    if tp > 1:
        check_tp(cfg, tp)
    full = native_shapes(cfg)
    layouts = [[(NATIVE_PREFIX + k, tp_shape(k, s, tp), dtype) for k, s in full.items()] for _ in range(tp)]
    writers = [TorchStreamWriter(p, lay, label) for p, lay, label in zip(paths, layouts, labels)]
    for key, t in tensors:
        if key not in full or tuple(t.shape) != full[key]:
            want = list(full[key]) if key in full else "no such key"
            raise ConversionError(
                f"{labels[0]}: tensor {key} {list(t.shape)} does not fit the {cfg.name!r} layout ({want})"
            )
        for w, part in zip(writers, split_tp(key, t, tp)):
            w.write(NATIVE_PREFIX + key, part)
    for w in writers:
        w.close()


def write_model_pt(
    path: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    cfg: CosmosARConfig,
    *,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """One flat ``model.pt`` in the released layout: ``model.``-prefixed keys, released order, ``dtype`` (bf16)."""
    path = Path(path)
    with atomic_outputs([path], overwrite) as (tmp,):
        _write_pt_files([tmp], tensors, cfg, 1, dtype, [path])
    return path


def write_tp_shards(
    path: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    cfg: CosmosARConfig,
    tp: int,
    *,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
) -> list[Path]:
    """cosmos-predict1 TP shards for ``path`` (``model.pt`` -> ``model_model_mp_{r}.pt``), contiguous tensors."""
    check_tp(cfg, tp)
    finals = shard_paths(Path(path), tp)
    with atomic_outputs(finals, overwrite) as temps:
        _write_pt_files(temps, tensors, cfg, tp, dtype, finals)
    return finals


def write_native_dir(
    folder: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    cfg: CosmosARConfig,
    *,
    tp: int = 1,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """A folder with ``model.pt`` (tp=1) or ``model_model_mp_{r}.pt`` (tp>1) and ``config.json``."""
    folder = Path(folder)
    if tp > 1:
        check_tp(cfg, tp)
    with atomic_outputs([folder], overwrite, directory=True) as (tmp,):
        (tmp / HF_CONFIG).write_text(json.dumps(config_json(cfg, dtype), indent=2) + "\n")
        names = shard_paths(Path("model.pt"), tp) if tp > 1 else [Path("model.pt")]
        _write_pt_files([tmp / n for n in names], tensors, cfg, tp, dtype, [folder / n for n in names])
    return folder


def export_native(
    output: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    cfg: CosmosARConfig,
    *,
    tp: int = 1,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
) -> list[Path]:
    """``output`` ending in ``.pt``: that file (tp=1) or its shards next to it; otherwise a folder (see
    ``write_native_dir``). Returns the written paths."""
    output = Path(output)
    if output.suffix == ".pt":
        return (
            write_tp_shards(output, tensors, cfg, tp, overwrite=overwrite, dtype=dtype)
            if tp > 1
            else [write_model_pt(output, tensors, cfg, overwrite=overwrite, dtype=dtype)]
        )
    return [write_native_dir(output, tensors, cfg, tp=tp, overwrite=overwrite, dtype=dtype)]


def write_hf(
    folder: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    cfg: CosmosARConfig,
    *,
    overwrite: bool = False,
    dtype: torch.dtype = torch.bfloat16,
    source: str = "",
) -> Path:
    """A Hugging Face folder: ``config.json``, ``model.safetensors`` (native keys, no prefix) and ``README.md``."""
    folder = Path(folder)
    with atomic_outputs([folder], overwrite, directory=True) as (tmp,):
        (tmp / HF_CONFIG).write_text(json.dumps(config_json(cfg, dtype), indent=2) + "\n")
        (tmp / HF_CARD).write_text(model_card(cfg, source))
        meta = {"format": "pt", "cosmos_ar_preset": cfg.name}
        write_safetensors(tmp / HF_WEIGHTS, native_layout(cfg, dtype), tensors, meta, label=folder / HF_WEIGHTS)
    return folder


def model_card(cfg: CosmosARConfig, source: str = "") -> str:
    yarn = (
        f"YaRN scale {cfg.yarn_scale:g} over the original latent grid {list(cfg.original_latent_shape or [])}"
        if cfg.apply_yarn
        else "no YaRN"
    )
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
