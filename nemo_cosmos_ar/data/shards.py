"""The shards of a ``prepare-data`` run and their merge into the dataset.

Each worker appends finished units to its own shard in ``<output>/_work/`` (``shard-<k>.tokens``: raw uint16 rows;
``shard-<k>.jsonl``: one committed line per unit, written after the tokens are on disk); a resumed run cuts every
shard back to its last committed unit (``repair_shard``). When all units are done, ``merge_shards`` writes the
``train``/``val`` indexed datasets and ``metadata.json``. Split out of ``prepare.py``, which drives it.
"""

from __future__ import annotations

import json
import os

import numpy as np

from nemo_cosmos_ar.data.dataset import METADATA
from nemo_cosmos_ar.data.prepare_config import (
    FORMAT,
    FORMAT_VERSION,
    SPLITS,
    TOKEN_DTYPE,
    WORK_DIR,
    PrepareConfig,
    PrepareSummary,
)
from nemo_cosmos_ar.tokenizer import grid

# ---------------------------------------------------------------------------------------------------------------
# Shards: append-only token rows + a journal of committed units
# ---------------------------------------------------------------------------------------------------------------


def _read_journal(path: str) -> list[dict]:
    """Complete lines of a shard journal; a torn last line (killed mid-write) is ignored."""
    if not os.path.isfile(path):
        return []
    entries = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            entries.append(json.loads(line))
    return entries


def repair_shard(work: str, name: str, clip_len: int) -> list[dict]:
    """Cut shard ``name`` back to its committed units (drops a torn tail of either file); returns its journal."""
    journal_path, tokens_path = os.path.join(work, name + ".jsonl"), os.path.join(work, name + ".tokens")
    entries = _read_journal(journal_path)
    row_bytes = clip_len * np.dtype(TOKEN_DTYPE).itemsize
    have = os.path.getsize(tokens_path) // row_bytes if os.path.isfile(tokens_path) else 0
    keep, rows = [], 0
    for e in entries:  # tokens are synced before their journal line, so this only trims after a disk failure
        if rows + len(e["clips"]) > have:
            break
        keep.append(e)
        rows += len(e["clips"])
    with open(journal_path, "wb") as f:
        f.writelines((json.dumps(e) + "\n").encode() for e in keep)
    with open(tokens_path, "ab") as f:
        f.truncate(rows * row_bytes)
    return keep


def _shard_names(work: str) -> list[str]:
    return sorted(n[: -len(".jsonl")] for n in os.listdir(work) if n.startswith("shard-") and n.endswith(".jsonl"))


def done_units(work: str) -> set[int]:
    return {e["unit"] for name in _shard_names(work) for e in _read_journal(os.path.join(work, name + ".jsonl"))}


class ShardWriter:
    """Appends finished units to ``<work>/<name>.tokens`` / ``.jsonl`` (call ``repair_shard`` before opening)."""

    def __init__(self, work: str, name: str) -> None:
        self._tokens = open(os.path.join(work, name + ".tokens"), "ab")
        self._journal = open(os.path.join(work, name + ".jsonl"), "ab")

    def commit(self, unit: int, clip_ids: list[int], rows: np.ndarray, failed: list[tuple[int, str]]) -> None:
        self._tokens.write(np.ascontiguousarray(rows, dtype=TOKEN_DTYPE).tobytes())
        self._tokens.flush()
        os.fsync(self._tokens.fileno())
        line = {"unit": unit, "clips": clip_ids, "failed": [list(f) for f in failed]}
        self._journal.write((json.dumps(line) + "\n").encode())
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def close(self) -> None:
        self._tokens.close()
        self._journal.close()


# ---------------------------------------------------------------------------------------------------------------
# Merging shards into the dataset
# ---------------------------------------------------------------------------------------------------------------


def _format_json(obj, indent: str = "") -> str:
    """JSON with one line per list element and short lists inline (a readable metadata file of any size)."""
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {_format_json(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(obj, list) and obj and any(isinstance(x, (dict, list)) for x in obj):
        return "[\n" + ",\n".join(inner + json.dumps(x) for x in obj) + f"\n{indent}]"
    return json.dumps(obj)


def merge_shards(cfg: PrepareConfig, plan: dict) -> PrepareSummary:
    """Write ``train``/``val`` ``.bin``/``.idx`` and ``metadata.json`` from the shards (all units must be done)."""
    from nemo_cosmos_ar.data.indexed import IndexedRowsWriter

    work = os.path.join(cfg.output, WORK_DIR)
    clip_len = grid.tokens_per_clip(cfg.latent_shape)
    where: dict[int, tuple[str, int]] = {}
    failed: dict[int, str] = {}
    units_done = set()
    for name in _shard_names(work):
        row = 0
        for e in _read_journal(os.path.join(work, name + ".jsonl")):
            units_done.add(e["unit"])
            for cid in e["clips"]:
                where[cid] = (name, row)
                row += 1
            failed.update((int(c), r) for c, r in e["failed"])
    missing = len(plan["units"]) - len(units_done)
    if missing:
        raise RuntimeError(f"{missing} of {len(plan['units'])} units are not encoded yet; rerun to finish")
    tokens = {}
    for name in _shard_names(work):
        path = os.path.join(work, name + ".tokens")
        if os.path.getsize(path):
            tokens[name] = np.memmap(path, dtype=TOKEN_DTYPE, mode="r").reshape(-1, clip_len)
    videos = plan["videos"]
    samples: dict[str, list[dict]] = {s: [] for s in SPLITS}
    stride = cfg.windows.frame_stride
    # The new files are written in the work folder and renamed over the old ones only when all are complete, so
    # an existing dataset (``--overwrite``) survives any failure before that point.
    for s, split in enumerate(SPLITS):
        writer = IndexedRowsWriter(os.path.join(work, split), TOKEN_DTYPE, clip_len)
        for cid, (v, start, sp) in enumerate(plan["clips"]):
            if sp != s or cid in failed:
                continue
            name, row = where[cid]
            writer.add(tokens[name][row])
            samples[split].append({"video": videos[v]["path"], "first_frame": start, "frame_stride": stride})
        writer.finalize()
    broken = {}  # videos none (or only some) of whose clips decoded
    for cid, reason in failed.items():
        broken.setdefault(plan["clips"][cid][0], reason)
    fully_broken = {v for v in broken if not any(plan["clips"][c][0] == v for c in where)}
    skipped = sorted(list(map(tuple, plan["skipped"])) + [(videos[v]["path"], broken[v]) for v in sorted(broken)])
    fp = plan["fingerprint"]
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": cfg.dataset,
        "latent_shape": list(cfg.latent_shape),
        "tokens_per_clip": clip_len,
        "dtype": np.dtype(TOKEN_DTYPE).name,
        "resolution": list(cfg.resolution),
        "num_frames": cfg.windows.num_frames,
        "window_stride": cfg.windows.window_stride,
        "frame_stride": cfg.windows.frame_stride,
        "tokenizer": {
            "name": os.path.basename(os.path.normpath(cfg.tokenizer)),
            "path": os.path.abspath(cfg.tokenizer),
            "checksum": fp["tokenizer_checksum"],
            "backend": fp["backend"],
            "dtype": fp["dtype"],
            "device_type": fp["device_type"],
        },
        "source": {
            "videos": fp["videos"],
            "files_found": plan["files_found"],
            "videos_used": len(videos) - len(fully_broken),
            "skipped": [{"path": p, "reason": r} for p, r in skipped],
        },
        "val_fraction": cfg.val_fraction,
        "split_seed": cfg.seed,
        "splits": {
            s: {
                "clips": len(samples[s]),
                "tokens": len(samples[s]) * clip_len,
                "videos": len({x["video"] for x in samples[s]}),
            }
            for s in SPLITS
        },
        "videos": [{k: v[k] for k in ("path", "frames", "fps", "height", "width", "split")} for v in videos],
        "samples": samples,
    }
    tmp = os.path.join(work, METADATA)
    with open(tmp, "w") as f:
        f.write(_format_json(meta) + "\n")
    old_meta = os.path.join(cfg.output, METADATA)
    if os.path.exists(old_meta):
        os.remove(old_meta)  # first: without it the folder reads as incomplete while the files are swapped
    for split in SPLITS:
        for ext in (".bin", ".idx"):
            os.replace(os.path.join(work, split + ext), os.path.join(cfg.output, split + ext))
    os.replace(tmp, old_meta)  # last: its presence marks a complete dataset
    return PrepareSummary(
        output=cfg.output,
        files_found=plan["files_found"],
        videos_read=len(videos) - len(fully_broken),
        skipped=skipped,
        clips={s: len(samples[s]) for s in SPLITS},
        failed_clips=len(failed),
        tokens=sum(len(x) for x in samples.values()) * clip_len,
    )
