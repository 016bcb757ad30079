"""Read a NeMo 2 distributed checkpoint of a Cosmos AR model without NeMo (torch DCP and YAML only).

A NeMo checkpoint folder holds ``weights/`` (torch distributed checkpoint: ``.metadata`` + ``*.distcp`` shards of
TP-independent global tensors, keys prefixed ``module.``) and ``context/`` (``io.json``, NeMo's serialised objects,
and ``model.yaml``, the same model with every config field resolved). The architecture is read from
``model.yaml``; ``io.json`` is only checked to be intact. The weights are read a slice at a time straight from the
shards, so export never builds a model and holds one layer at once, whatever TP the checkpoint was saved at.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator

import torch
from torch.distributed._shard._utils import narrow_tensor_by_index
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.metadata import ChunkStorageMetadata, MetadataIndex
from torch.distributed.checkpoint.planner import LoadPlan, LoadPlanner
from torch.distributed.checkpoint.planner_helpers import create_read_items_for_chunk_list

from nemo_cosmos_ar.conversion.writers import ConversionError
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.config import CosmosARConfig

MODULE_PREFIX = "module."  # NeMo's MegatronParallel wrapper prefix in distributed checkpoints
_TOP_LEVEL = ("embedding.word_embeddings.weight", "decoder.final_layernorm.weight", "output_layer.weight")


def is_nemo_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and ((p / "weights" / ".metadata").exists() or (p / "context" / "io.json").exists())


def lora_base(checkpoint: str | Path) -> str | None | bool:
    """False for a checkpoint that is not a LoRA run's; else the base checkpoint it records (None: the run started
    from random weights). Read without NeMo, so the paths are checked before anything is imported."""
    meta = Path(checkpoint) / "weights" / "adapter_metadata.json"
    if not meta.is_file():
        return False
    try:
        recorded = json.loads(meta.read_text()).get("model_ckpt_path")
    except (OSError, ValueError, AttributeError):
        return None  # the exporter names the damaged file
    return None if recorded in (None, "", "None") else str(recorded)


def read_context_config(ckpt: str | Path) -> CosmosARConfig:
    """The architecture NeMo recorded for ``ckpt`` (``context/model.yaml``); ``context/io.json`` must parse too.

    Raises ``ConversionError`` (one line) when either file is missing or damaged, or does not describe a Cosmos AR
    model.
    """
    import yaml

    ctx = Path(ckpt) / "context"
    for name in ("model.yaml", "io.json"):  # the architecture first: it is what a reader needs
        if not (ctx / name).is_file():
            raise ConversionError(
                f"{ctx / name} is missing: the checkpoint is incomplete or is not a NeMo checkpoint "
                "of a Cosmos AR run (pass its step=N-last folder, or copy it again)"
            )
    try:
        json.loads((ctx / "io.json").read_text())
        c = yaml.safe_load((ctx / "model.yaml").read_text())["config"]
        heads = int(c["num_attention_heads"])
        return CosmosARConfig(
            name=str(c.get("preset") or "custom"),
            n_layers=int(c["num_layers"]),
            dim=int(c["hidden_size"]),
            n_heads=heads,
            n_kv_heads=int(c.get("num_query_groups") or heads),
            head_dim=int(c.get("kv_channels") or int(c["hidden_size"]) // heads),
            ffn_hidden_size=int(c["ffn_hidden_size"]),
            vocab_size=int(c["vocab_size"]),
            norm_eps=float(c["layernorm_epsilon"]),
            rope_theta=float(c["rope_theta"]),
            latent_shape=tuple(c["latent_shape"]),
            apply_yarn=bool(c.get("apply_yarn", False)),
            yarn_scale=float(c.get("yarn_scale", 1.0)),
            yarn_beta_fast=float(c.get("yarn_beta_fast", 4.0)),
            yarn_beta_slow=float(c.get("yarn_beta_slow", 1.0)),
            original_latent_shape=c.get("original_latent_shape"),
        )
    except Exception as e:  # noqa: BLE001 -- OS, JSON, YAML, key and value errors all mean "unreadable context"
        raise ConversionError(
            f"{ckpt}/context cannot be read ({type(e).__name__}: "
            f"{(str(e).strip().splitlines() or [''])[0][:160]}); the checkpoint is damaged or "
            "was not written by nemo_cosmos_ar: copy it again"
        ) from None


class _SlicePlanner(LoadPlanner):
    """Reads given slices of global tensors from a torch DCP checkpoint into given buffers."""

    def __init__(self, requests: dict[str, tuple[str, tuple[int, ...], torch.Tensor]]) -> None:
        self.requests = requests  # name -> (checkpoint key, offsets into the global tensor, destination)

    def set_up_planner(self, state_dict, metadata=None, is_coordinator=False) -> None:
        self.metadata = metadata

    def create_local_plan(self) -> LoadPlan:
        items = []
        for name, (key, offsets, dest) in self.requests.items():
            chunk = ChunkStorageMetadata(offsets=torch.Size(offsets), sizes=dest.shape)
            for it in create_read_items_for_chunk_list(key, self.metadata.state_dict_metadata[key], [chunk]):
                dest = MetadataIndex(name, it.dest_index.offset, it.dest_index.index)
                items.append(dataclasses.replace(it, dest_index=dest))
        return LoadPlan(items)

    def create_global_plan(self, global_plan):
        return global_plan

    def finish_plan(self, central_plan):
        return central_plan

    def load_bytes(self, read_item, value) -> None:
        pass

    def resolve_tensor(self, read_item) -> torch.Tensor:
        dest = self.requests[read_item.dest_index.fqn][2]
        return narrow_tensor_by_index(dest, read_item.dest_offsets, read_item.lengths)

    def commit_tensor(self, read_item, tensor) -> None:
        pass


def _read_dcp_metadata(reader: FileSystemReader, weights: Path):
    """The torch DCP ``.metadata``, and a check that every ``.distcp`` file holds the bytes it lists, so a truncated
    or missing shard is one clear error up front instead of an exception from deep inside a read."""
    try:
        md = reader.read_metadata()
        storage = md.storage_data.values()
        need: dict[str, int] = {}
        for info in storage:
            need[info.relative_path] = max(need.get(info.relative_path, 0), int(info.offset) + int(info.length))
    except Exception as e:  # noqa: BLE001 -- unpickling a damaged file raises anything
        raise ConversionError(
            f"{weights}/.metadata is damaged ({type(e).__name__}); copy the checkpoint again"
        ) from None
    for name, size in sorted(need.items()):
        f = weights / name
        have = f.stat().st_size if f.is_file() else None
        if have is None or have < size:
            state = "is missing" if have is None else f"is truncated ({have:,} of {size:,} bytes)"
            raise ConversionError(
                f"{f} {state}; the checkpoint is incomplete: copy it again or use another step's checkpoint"
            )
    return md


class NeMoCheckpointReader:
    """The weights of a NeMo Cosmos AR checkpoint (saved at any TP) as native tensors, one layer at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConversionError(
                f"{self.path} {'is not a folder' if self.path.exists() else 'does not exist'}; "
                "pass the NeMo checkpoint folder that holds weights/ and context/"
            )
        # NeMo 2 saves the shards under weights/; a folder without one is read as the weights folder itself
        self.weights = self.path / "weights" if (self.path / "weights").is_dir() else self.path
        if not (self.weights / ".metadata").exists():
            raise ConversionError(
                f"{self.path} is not a NeMo distributed checkpoint (no {self.weights}/.metadata); "
                "pass the folder that holds weights/ and context/"
            )
        self.config = read_context_config(self.path)
        self._reader = FileSystemReader(str(self.weights))
        self._md = _read_dcp_metadata(self._reader, self.weights)  # both layer specs save TE names

    def _read(self, requests: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]]) -> dict[str, torch.Tensor]:
        """name -> (checkpoint key, offsets, sizes) => name -> tensor of those sizes (stored dtype)."""
        reqs = {}
        for name, (key, offsets, sizes) in requests.items():
            md = self._md.state_dict_metadata.get(key)
            if md is None or not hasattr(md, "size"):
                raise ConversionError(f"{self.weights} has no tensor {key!r}; is this a Cosmos AR checkpoint?")
            if any(o + s > g for o, s, g in zip(offsets, sizes, md.size)) or len(md.size) != len(sizes):
                raise ConversionError(
                    f"{self.weights}: {key} has shape {list(md.size)}, but its config "
                    f"({self.config.name}) needs {list(sizes)} at {list(offsets)}"
                )
            reqs[name] = (key, offsets, torch.empty(sizes, dtype=md.properties.dtype))
        planner = _SlicePlanner(reqs)
        planner.set_up_planner({}, self._md, True)
        self._reader.set_up_storage_reader(self._md, True)
        plan = self._reader.prepare_local_plan(planner.create_local_plan())
        plan = planner.finish_plan(self._reader.prepare_global_plan([plan])[0])
        self._reader.read_data(plan, planner).wait()
        return {name: t for name, (_, _, t) in reqs.items()}

    def iter_native(self, layer_hook=None) -> Iterator[tuple[str, torch.Tensor]]:
        """``(native key, tensor)`` in the released order, in the stored dtype; holds one layer at a time.
        ``layer_hook(i, tensors)`` may change layer i's Megatron tensors (layer-0 names) before they are split
        into native keys: the LoRA merge (``nemo_glue/lora.py``)."""
        cfg, p = self.config, MODULE_PREFIX
        v, d = cfg.vocab_size, cfg.dim
        yield "tok_embeddings.weight", self._read({"t": (p + "embedding.word_embeddings.weight", (0, 0), (v, d))})["t"]
        one = dataclasses.replace(cfg, n_layers=1)
        # layer 0's tensors under TE names (what distributed checkpoints store) with their full shapes
        shapes = {k: s for k, s in cm.mcore_shapes(one, "te").items() if k.startswith("decoder.layers.0.")}
        for i in range(cfg.n_layers):
            # stored as [n_layers, ...] global tensors: read row i of each
            req = {
                name: (p + name.replace("layers.0.", "layers."), (i,) + (0,) * len(s), (1, *s))
                for name, s in shapes.items()
            }
            layer = {k: t[0] for k, t in self._read(req).items()}
            if layer_hook is not None:
                layer = layer_hook(i, layer)
            # mcore_to_native wants the whole model; the top-level tensors are passed through untouched
            layer.update({k: torch.empty(0) for k in _TOP_LEVEL})
            for k, t in cm.mcore_to_native(layer, one, "te").items():
                if k.startswith("layers.0."):
                    yield k.replace("layers.0.", f"layers.{i}.", 1), t
        yield "norm.weight", self._read({"t": (p + "decoder.final_layernorm.weight", (0,), (d,))})["t"]
        yield "output.weight", self._read({"t": (p + "output_layer.weight", (0, 0), (v, d))})["t"]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.iter_native())
