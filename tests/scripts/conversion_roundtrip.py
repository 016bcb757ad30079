"""One process for every single-rank conversion check (NeMo costs ~10 s to import, so the work is batched here).

``python conversion_roundtrip.py WORKDIR`` writes random tiny weights in the released formats, converts them through
NeMo and back, runs ``cosmos-ar convert logits`` and the error cases, and writes ``WORKDIR/results.json`` for
``tests/test_conversion.py`` to assert on. It leaves ``nemo_tp1`` (a TP=1 import), ``tokens.pt`` and
``ref_logits.pt`` for the torchrun and CLI tests.
"""

import contextlib
import io
import json
import os
import sys
import traceback
from pathlib import Path

import torch

NATIVE = "model."


def _same_files(a: Path, b: Path) -> str:
    """'' when two torch files hold the same keys in the same order, bit-identical tensors of the same dtype."""
    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    if list(x) != list(y):
        return f"key order/names differ: {list(x)[:3]} vs {list(y)[:3]}"
    for k in x:
        if x[k].dtype != y[k].dtype or x[k].shape != y[k].shape or not torch.equal(x[k], y[k]):
            return f"{k}: {x[k].dtype} {list(x[k].shape)} vs {y[k].dtype} {list(y[k].shape)} or values differ"
        if not y[k].is_contiguous():
            return f"{k} is not contiguous in {b}"
    return ""


def _cosmos_style_shards(sd: dict, path: Path, tp: int) -> list[Path]:
    """TP shards the way cosmos-predict1's shard script writes them: torch.chunk *views* saved directly (each file
    carries whole storages; wo/w2 column chunks are non-contiguous)."""
    from nemo_cosmos_ar.conversion.native_io import shard_paths
    from nemo_cosmos_ar.conversion.tp_layout import tp_split_dim

    paths = shard_paths(path, tp)
    for r, p in enumerate(paths):
        part = {}
        for k, v in sd.items():
            dim = tp_split_dim(k.removeprefix(NATIVE))
            part[k] = v if dim is None else torch.chunk(v, tp, dim=dim)[r]
        torch.save(part, p)
    return paths


def imp(src, out, *extra) -> list[str]:
    """``cosmos-ar convert import`` arguments."""
    return ["convert", "import", "--source", str(src), "--output", str(out), *extra]


def exp(checkpoint, out, *extra) -> list[str]:
    """``cosmos-ar convert export`` arguments."""
    return ["convert", "export", "--checkpoint", str(checkpoint), "--output", str(out), *extra]


def _error_case(work: Path, name: str, argv: list[str], output: Path) -> dict:
    """Run ``cosmos-ar <argv>`` in this process; record rc, stderr and whether anything was left behind."""
    from nemo_cosmos_ar.cli import main

    before = set(os.listdir(output.parent)) if output.parent.exists() else set()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    after = set(os.listdir(output.parent)) if output.parent.exists() else set()
    leftovers = sorted(after - before) + sorted(p for p in after if ".partial-" in p)
    return {"rc": rc, "stderr": err.getvalue().strip(), "leftovers": leftovers, "output_exists": output.exists()}


def main() -> None:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    from nemo_cosmos_ar.runtime import prepare_process

    prepare_process()  # this script is an entry point: the CUDA stand-ins on CPU
    from nemo.collections import llm

    from nemo_cosmos_ar.cli import main as cli
    from nemo_cosmos_ar.conversion import native_io
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer
    from nemo_cosmos_ar.nemo_glue.model import CosmosARConfigTiny, CosmosARModel

    res: dict = {}
    cfg = get_preset("tiny")
    ref = ReferenceTransformer(cfg).init_random(seed=21)
    sd16 = {k: v.to(torch.bfloat16) for k, v in ref.state_dict().items()}
    released = {NATIVE + k: sd16[k] for k in native_io.native_shapes(cfg)}
    torch.save(released, work / "model.pt")  # written by torch.save itself, like the released file
    (work / "tp").mkdir()
    shards = _cosmos_style_shards(released, work / "tp" / "model.pt", 2)
    torch.save(
        {"model": released, "optimizer": {"step": torch.tensor(1000)}, "iteration": 1000}, work / "iter_000001000.pt"
    )
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.seq_length - 1), generator=torch.Generator().manual_seed(5))
    torch.save(tokens, work / "tokens.pt")
    ref.load_state_dict({k: v.float() for k, v in sd16.items()})
    with torch.no_grad():
        torch.save(ref(tokens), work / "ref_logits.pt")
    model = lambda: CosmosARModel(CosmosARConfigTiny())  # noqa: E731

    # 1. model.pt -> NeMo -> model.pt (llm.import_ckpt / llm.export_ckpt)
    llm.import_ckpt(model(), f"pt://{work / 'model.pt'}", output_path=work / "nemo_tp1")
    llm.export_ckpt(work / "nemo_tp1", "pt", output_path=work / "back")
    res["model_pt_roundtrip"] = _same_files(work / "model.pt", work / "back" / "model.pt")
    res["config_json"] = json.loads((work / "back" / "config.json").read_text())

    # 2. TP shards -> NeMo -> TP shards (cosmos-ar CLI in-process; the exporter through llm.export_ckpt pt_tp2)
    assert cli(imp(shards[1], work / "nemo_shards")) == 0
    llm.export_ckpt(work / "nemo_shards", "pt_tp2", output_path=work / "back_tp" / "model.pt")
    back_shards = native_io.shard_paths(work / "back_tp" / "model.pt", 2)
    res["tp_shards_roundtrip"] = " | ".join(filter(None, (_same_files(a, b) for a, b in zip(shards, back_shards))))
    res["tp_shard_sizes"] = [os.path.getsize(p) for p in back_shards]
    res["model_pt_size"] = os.path.getsize(work / "back" / "model.pt")

    # 3. model.pt -> NeMo -> hf -> NeMo -> model.pt
    llm.export_ckpt(work / "nemo_tp1", "hf", output_path=work / "hf")
    res["hf_files"] = sorted(os.listdir(work / "hf"))
    llm.import_ckpt(model(), f"hf://{work / 'hf'}", output_path=work / "nemo_hf")
    assert cli(exp(work / "nemo_hf", work / "back_hf.pt")) == 0
    res["hf_roundtrip"] = _same_files(work / "model.pt", work / "back_hf.pt")

    # 4. a training checkpoint iter_*.pt (weights under "model")
    assert cli(imp(work / "iter_000001000.pt", work / "nemo_iter")) == 0
    assert cli(exp(work / "nemo_iter", work / "back_iter")) == 0
    res["iter_roundtrip"] = _same_files(work / "model.pt", work / "back_iter" / "model.pt")

    # 4b. a custom architecture from config.json next to the weights (not a preset: io.json holds the full config)
    import dataclasses

    custom = dataclasses.replace(
        cfg, n_layers=1, latent_shape=(2, 4, 6), apply_yarn=False, original_latent_shape=None, name="custom"
    )
    cref = ReferenceTransformer(custom).init_random(seed=4).to(torch.bfloat16)
    (work / "custom").mkdir()
    torch.save(
        {NATIVE + k: cref.state_dict()[k] for k in native_io.native_shapes(custom)}, work / "custom" / "model.pt"
    )
    custom.to_json(str(work / "custom" / "config.json"))
    assert cli(imp(work / "custom", work / "nemo_custom")) == 0
    assert cli(exp(work / "nemo_custom", work / "back_custom")) == 0
    res["custom_roundtrip"] = _same_files(work / "custom" / "model.pt", work / "back_custom" / "model.pt")
    res["custom_config_back"] = json.loads((work / "back_custom" / "config.json").read_text())

    # 5. cosmos-ar convert logits on the imported model (TP=1, fp32) and on the released file itself
    for name, src in (("logits_nemo_tp1", work / "nemo_tp1"), ("logits_model_pt", work / "model.pt")):
        argv = ["convert", "logits", "--checkpoint", str(src), "--tokens", str(work / "tokens.pt")]
        assert cli([*argv, "--output", str(work / f"{name}.pt")]) == 0

    # 6. error cases: one clear message each, nothing left behind
    (work / "errors").mkdir()
    err = work / "errors"
    missing = dict(released)
    missing.pop("model.layers.1.feed_forward.w3.weight")
    torch.save(missing, err / "missing.pt")
    torch.save({**released, "model.layers.0.attention.wqkv.weight": torch.zeros(4, 4)}, err / "extra.pt")
    blob = (work / "model.pt").read_bytes()
    (err / "truncated.pt").write_bytes(blob[: len(blob) * 2 // 3])
    (err / "notes.pt").write_text("these are my notes, not a checkpoint\n")
    res["errors"] = {
        "wrong_architecture": _error_case(
            work, "arch", imp(work / "model.pt", err / "o1", "--model", "4b"), err / "o1"
        ),
        "missing_key": _error_case(work, "missing", imp(err / "missing.pt", err / "o2"), err / "o2"),
        "extra_key": _error_case(work, "extra", imp(err / "extra.pt", err / "o3", "--model", "tiny"), err / "o3"),
        "truncated": _error_case(work, "trunc", imp(err / "truncated.pt", err / "o4"), err / "o4"),
        "not_a_checkpoint": _error_case(work, "notes", imp(err / "notes.pt", err / "o5"), err / "o5"),
        "existing_import_output": _error_case(
            work, "exists", imp(work / "model.pt", work / "nemo_tp1"), work / "nemo_tp1"
        ),
        "existing_export_output": _error_case(work, "exists2", exp(work / "nemo_tp1", work / "back"), work / "back"),
    }
    res["nemo_tp1_after_refusal"] = sorted(os.listdir(work / "nemo_tp1"))
    # --overwrite replaces an existing output only after the new one is complete
    assert cli(exp(work / "nemo_tp1", work / "back", "--overwrite")) == 0
    res["overwrite_roundtrip"] = _same_files(work / "model.pt", work / "back" / "model.pt")
    res["leftover_partials"] = [str(p) for p in work.rglob("*.partial-*")]
    (work / "results.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
