"""``cosmos-ar convert export`` of a LoRA run's last checkpoint, in the training process of ``train_tiny.py
--export DIR`` (NeMo is imported there already), and the refusals around it. Writes into DIR:

* ``merged/`` (fp32 model.pt + config.json), ``merged_bf16.pt``, ``merged_tp2/`` (TP shards), ``merged_hf/``,
  ``adapters/`` (--adapters-only, fp32), ``merged_logits.pt`` (``convert logits`` of ``merged/model.pt``),
  ``nemo_export/`` (``llm.export_ckpt(..., "pt")``, what ``nemo llm export`` runs);
* ``moved_base/`` (the checkpoint exported with ``--base`` after its recorded base pointer went stale);
* ``results.json``: rc and stderr of each refused command, the checkpoint's path and its adapter_metadata.json.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path


def _cli(argv: list[str]) -> dict:
    from nemo_cosmos_ar.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    return {"rc": rc, "stderr": err.getvalue().strip()}


def run(last: str, out: str, tokens: str) -> None:
    from nemo_cosmos_ar.cli import main as cli

    exp = ["convert", "export", "--checkpoint", last]
    for argv in (
        ["--output", f"{out}/merged", "--dtype", "fp32"],
        ["--output", f"{out}/merged_tp2", "--tp", "2"],
        ["--output", f"{out}/merged_hf", "--format", "hf"],
        ["--output", f"{out}/merged_bf16.pt"],
        ["--output", f"{out}/adapters", "--adapters-only", "--dtype", "fp32"],
    ):
        assert cli(exp + argv) == 0, argv
    assert (
        cli(
            [
                "convert",
                "logits",
                "--checkpoint",
                f"{out}/merged/model.pt",
                "--tokens",
                tokens,
                "--output",
                f"{out}/merged_logits.pt",
            ]
        )
        == 0
    )
    from nemo.collections import llm

    llm.export_ckpt(Path(last), "pt", output_path=Path(out) / "nemo_export")  # `nemo llm export` merges too

    meta_file = Path(last) / "weights" / "adapter_metadata.json"
    base = json.loads(meta_file.read_text())["model_ckpt_path"]
    res = {"last": last, "adapter_metadata": json.loads(meta_file.read_text())}
    # a copy whose recorded base is gone (moved, or another machine), and one from a random-init run
    stale, random_init = Path(out) / "stale_ckpt", Path(out) / "random_init_ckpt"
    for copy, pointer in ((stale, f"{out}/no_such_base"), (random_init, "None")):
        shutil.copytree(last, copy)
        (copy / "weights" / "adapter_metadata.json").write_text(json.dumps({"model_ckpt_path": pointer}))
    res["stale_base"] = _cli(["convert", "export", "--checkpoint", str(stale), "--output", f"{out}/x1"])
    assert (
        cli(
            [
                "convert",
                "export",
                "--checkpoint",
                str(stale),
                "--base",
                base,
                "--dtype",
                "fp32",
                "--output",
                f"{out}/moved_base",
            ]
        )
        == 0
    )
    res["random_init_merge"] = _cli(["convert", "export", "--checkpoint", str(random_init), "--output", f"{out}/x2"])
    res["random_init_adapters"] = _cli(
        [
            "convert",
            "export",
            "--checkpoint",
            str(random_init),
            "--adapters-only",
            "--output",
            f"{out}/random_init_adapters",
        ]
    )
    res["adapters_only_tp"] = _cli(exp + ["--adapters-only", "--tp", "2", "--output", f"{out}/x3"])
    res["adapters_only_full"] = _cli(
        ["convert", "export", "--checkpoint", base, "--adapters-only", "--output", f"{out}/x4"]
    )
    res["base_on_full"] = _cli(["convert", "export", "--checkpoint", base, "--base", base, "--output", f"{out}/x5"])
    res["logits_of_adapters"] = _cli(
        ["convert", "logits", "--checkpoint", last, "--tokens", tokens, "--output", f"{out}/x6.pt"]
    )
    res["left_behind"] = sorted(p.name for p in Path(out).iterdir() if p.name.startswith(("x", ".")))
    (Path(out) / "results.json").write_text(json.dumps(res, indent=2))
