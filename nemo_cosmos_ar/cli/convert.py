"""``cosmos-ar convert``: checkpoint conversion and the parity logits. Parses and checks the arguments, then calls
``nemo_glue.connectors`` (import/export through NeMo) or ``conversion.logits``.

Examples::

    cosmos-ar convert import --source ckpts/Cosmos-Predict1-4B/model.pt --output ckpts/4b-nemo
    cosmos-ar convert import --source ckpts/tp4/model_model_mp_0.pt --config config.json --output ckpts/custom-nemo
    cosmos-ar convert export --checkpoint ckpts/4b-nemo --output out/Cosmos-Predict1-4B-Base_post-trained
    cosmos-ar convert export --checkpoint ckpts/4b-nemo --tp 4 --output out/tp4          # model_model_mp_{r}.pt
    cosmos-ar convert export --checkpoint ckpts/4b-nemo --format hf --output out/hf
    cosmos-ar convert export --checkpoint runs/..._lora/checkpoints/step=999-last --output out/lora-merged
    cosmos-ar convert export --checkpoint runs/..._lora/checkpoints/step=999-last --adapters-only --output out/adapters
    cosmos-ar convert logits --checkpoint ckpts/4b-nemo --tokens tokens.pt --output logits.pt
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from nemo_cosmos_ar import checks
from nemo_cosmos_ar.model.presets import PRESETS

VERIFY_TABLE = "published"  # --verify without a value: look the MD5 up in download/checksums.py

EPILOG = """examples:
  cosmos-ar convert import --source ckpts/Cosmos-Predict1-4B/model.pt --output ckpts/4b-nemo
  cosmos-ar convert import --source ckpts/tp4/model_model_mp_0.pt --output ckpts/4b-nemo     # merges the shards
  cosmos-ar convert import --source ckpts/Cosmos-Predict1-4B/model.pt --output ckpts/4b-nemo --verify  # MD5 first
  cosmos-ar convert import --source my-model/ --config my-model/config.json --output ckpts/my-nemo
  cosmos-ar convert export --checkpoint ckpts/4b-nemo --output out/Cosmos-Predict1-4B-Base_post-trained
  cosmos-ar convert export --checkpoint ckpts/4b-nemo --output out/model.pt --tp 4   # out/model_model_mp_{r}.pt
  cosmos-ar convert export --checkpoint ckpts/4b-nemo --format hf --output out/hf
  cosmos-ar convert export --checkpoint runs/x_lora/checkpoints/step=999-last --output out/merged  # LoRA: merged
  cosmos-ar convert export --checkpoint runs/x_lora/checkpoints/step=999-last --adapters-only --output out/adapters
  cosmos-ar convert logits --checkpoint ckpts/4b-nemo --tokens tokens.pt --output logits.pt

Sources for import: the released model.pt, a cosmos-predict1 training checkpoint iter_*.pt, TP shards
*_model_mp_<r>.pt (any one of them, or <stem>.pt next to them), or a Hugging Face folder (config.json +
model.safetensors). The architecture is --model/--config, else a config.json next to the weights, else the preset
whose shapes the weights have. Outputs are written under a temporary name and renamed at the end; an existing output
is refused without --overwrite; an output that is, contains or lies inside an input is always refused. Weights
must be bf16/fp16/fp32 and finite. A LoRA run's checkpoint (adapters only) is exported merged into its base (the
one the run recorded, or --base), like a full run's; --adapters-only writes the adapters alone (PEFT layout).
The same conversions run through NeMo:
  nemo llm import model=cosmos_ar_4b source=pt:///abs/path/model.pt output_path=ckpts/4b-nemo
  nemo llm export path=ckpts/4b-nemo target=pt|pt_tp4|hf output_path=out
See docs/conversion.md."""


def _add_arch(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", choices=sorted(PRESETS), help="architecture preset (default: from the checkpoint)")
    g.add_argument("--config", help="a cosmos-predict1 style config.json with the architecture")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    fmt = dict(epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    overwrite = "replace an existing output (after the new one is written)"
    imp = sub.add_parser(
        "import",
        help="native checkpoint -> NeMo distributed checkpoint",
        **fmt,
        description="Convert a cosmos-predict1 checkpoint into a NeMo 2 distributed checkpoint (loadable at any TP).",
    )
    imp.add_argument("--source", required=True, help="model.pt, iter_*.pt, a *_model_mp_<r>.pt shard, or an HF folder")
    imp.add_argument("--output", required=True, help="NeMo checkpoint folder to create")
    _add_arch(imp)
    imp.add_argument(
        "--tp",
        type=int,
        default=1,
        help="save at this TP (needs torchrun with that many processes); default 1, which loads at any TP",
    )
    imp.add_argument("--overwrite", action="store_true", help=overwrite)
    imp.add_argument(
        "--verify",
        nargs="?",
        const=VERIFY_TABLE,
        metavar="MD5",
        help="check the source's MD5 first: against NVIDIA's published value for the released file "
        "(plain --verify), or against the given one",
    )

    exp = sub.add_parser(
        "export",
        help="NeMo checkpoint -> model.pt, TP shards or a Hugging Face folder",
        **fmt,
        description="Export a NeMo checkpoint (saved at any TP) to cosmos-predict1's formats.",
    )
    exp.add_argument("--checkpoint", required=True, help="NeMo checkpoint folder (holds weights/ and context/)")
    exp.add_argument(
        "--output",
        required=True,
        help="a folder (gets model.pt or the shards, plus config.json), or a "
        "path ending in .pt (that file, or its shards <stem>_model_mp_<r>.pt next to it)",
    )
    exp.add_argument(
        "--format",
        choices=("pt", "hf"),
        default="pt",
        help="pt: cosmos-predict1 model.pt (default); hf: config.json + model.safetensors + README.md",
    )
    exp.add_argument("--tp", type=int, default=1, help="with --format pt: write cosmos-predict1 TP shards for this TP")
    exp.add_argument(
        "--dtype",
        choices=("bf16", "fp32"),
        default="bf16",
        help="weights dtype of the output: bf16 "
        "(default, as released) or fp32 (keeps fp32 training or a LoRA merge unrounded)",
    )
    exp.add_argument(
        "--adapters-only",
        action="store_true",
        help="LoRA checkpoints: write just the adapters "
        "(adapter_model.safetensors + adapter_config.json, cosmos-predict1 module names) instead of "
        "the merged model",
    )
    exp.add_argument(
        "--base",
        help="LoRA checkpoints: the base NeMo checkpoint to merge into, if it is no longer "
        "where the run recorded it (weights/adapter_metadata.json)",
    )
    exp.add_argument("--overwrite", action="store_true", help=overwrite)

    lg = sub.add_parser(
        "logits",
        help="teacher-forced fp32 logits of a checkpoint, for parity checks",
        description="Run the Megatron-Core model teacher-forced in fp32 on the available device (CUDA "
        "if present) and save logits [B, S, vocab] fp32. Under torchrun it runs at TP=WORLD_SIZE.",
        **fmt,
    )
    lg.add_argument("--checkpoint", required=True, help="a NeMo checkpoint folder or any import source")
    _add_arch(lg)
    lg.add_argument(
        "--tokens", required=True, help="torch file with int64 token ids [B, S] or [S] (or {'tokens': ...})"
    )
    lg.add_argument("--output", required=True, help="where to save the logits (torch file)")
    lg.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    with checks.guard("convert"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Every argument, input and output is checked before NeMo is imported or a byte is written."""
    from nemo_cosmos_ar.conversion import native_io
    from nemo_cosmos_ar.conversion.architecture import resolve_config
    from nemo_cosmos_ar.conversion.writers import check_free

    if args.action != "logits":
        args.tp = checks.check_int(args.tp, "--tp", 1, 1024)
    if getattr(args, "config", None):
        checks.check_exists(args.config, "--config", "file")
    if args.action == "import":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if args.tp != world:
            raise checks.UserError(
                f"--tp {args.tp} needs {args.tp} processes (torchrun --nproc_per_node={args.tp}); "
                f"this launch has {world}"
            )
        ckpt = native_io.load_native(args.source)  # memory-mapped: cheap; the importer gets it as it is
        inputs = [("--source", args.source), ("--config", args.config)] + [("--source", f) for f in ckpt.files]
        checks.check_no_overlap(args.output, inputs + [("--source", ckpt.config_path)])
        check_free([Path(args.output)], args.overwrite)
        checks.check_writable(args.output)
        cfg = resolve_config(ckpt, args.config or args.model)
        if args.verify is not None:
            from nemo_cosmos_ar.conversion.verify import verify_md5

            if len(ckpt.files) > 1 and args.verify != VERIFY_TABLE:
                raise checks.UserError(
                    "--verify <md5> checks one file; TP shards are checked against the table (plain --verify)"
                )
            for f in ckpt.files:
                verify_md5(f, None if args.verify == VERIFY_TABLE else args.verify)
                print(f"MD5 verified: {f}")
        from nemo_cosmos_ar.conversion.verify import check_weights

        check_weights(ckpt)
        from nemo_cosmos_ar.nemo_glue.connectors import CosmosARImporter

        CosmosARImporter(str(Path(args.source).absolute()))(
            output_path=Path(args.output),
            overwrite=args.overwrite,
            config=cfg,
            tensor_model_parallel_size=args.tp,
            native=ckpt,
        )
    elif args.action == "export":
        if args.format == "hf" and args.tp != 1:
            raise checks.UserError("--tp applies to --format pt only")
        if args.adapters_only and (args.tp != 1 or args.format != "pt"):
            raise checks.UserError(
                "--adapters-only writes one folder of adapters (PEFT layout): --format and --tp "
                "apply to the merged model only"
            )
        checks.check_exists(args.checkpoint, "--checkpoint", "dir")
        from nemo_cosmos_ar.conversion.nemo_reader import lora_base

        base = lora_base(args.checkpoint)
        if args.base:
            checks.check_exists(args.base, "--base", "dir")
            if base is False:
                raise checks.UserError(
                    f"--base applies to LoRA checkpoints only; {args.checkpoint} holds all weights of its model"
                )
        elif args.adapters_only and base is False:
            raise checks.UserError(
                f"--adapters-only applies to LoRA checkpoints; {args.checkpoint} holds all weights "
                "of its model (it has no weights/adapter_metadata.json)"
            )
        inputs = [("--checkpoint", args.checkpoint), ("--base", args.base or (base or None))]
        checks.check_no_overlap(args.output, inputs)
        check_free([Path(args.output)], args.overwrite)
        checks.check_writable(args.output)
        dtype = torch.float32 if args.dtype == "fp32" else torch.bfloat16
        from nemo_cosmos_ar.nemo_glue.connectors import CosmosARHFExporter, CosmosARPTExporter

        ckpt = str(Path(args.checkpoint).absolute())
        if args.adapters_only:
            from nemo_cosmos_ar.nemo_glue.lora import export_adapters

            export_adapters(ckpt, args.output, base=args.base, overwrite=args.overwrite, dtype=dtype)
            print(f"Exported the LoRA adapters of {ckpt}: {args.output}")
        elif args.format == "hf":
            CosmosARHFExporter(ckpt)(
                output_path=Path(args.output), overwrite=args.overwrite, base=args.base, dtype=dtype
            )
        else:
            CosmosARPTExporter(ckpt)(
                output_path=Path(args.output), overwrite=args.overwrite, tp=args.tp, base=args.base, dtype=dtype
            )
    else:
        checks.check_exists(args.checkpoint, "--checkpoint")
        checks.check_no_overlap(
            args.output, [("--tokens", args.tokens), ("--checkpoint", args.checkpoint), ("--config", args.config)]
        )
        check_free([Path(args.output)], args.overwrite)
        checks.check_writable(args.output)
        tokens = load_tokens(args.tokens)
        from nemo_cosmos_ar.conversion.logits import compute_logits

        logits = compute_logits(args.checkpoint, tokens, config=args.config or args.model)
        if int(os.environ.get("RANK", "0")) == 0:
            save_tensor(logits, Path(args.output), args.overwrite)
            print(f"logits {list(logits.shape)} fp32 -> {args.output}")
    return 0


def load_tokens(path: str) -> torch.Tensor:
    """Token ids ``[B, S]`` int64 from a torch file holding a tensor (``[B, S]`` or ``[S]``) or ``{"tokens": ...}``."""
    from nemo_cosmos_ar.conversion.native_io import ConversionError, _load_torch_file

    p = checks.check_exists(path, "--tokens", "file")
    try:
        obj = _load_torch_file(p)
    except ConversionError as e:  # the checkpoint wording ("Pass the released model.pt ...") does not fit here
        raise checks.UserError(f"--tokens {str(e).split('. ')[0]}; save the ids with torch.save(ids, path)") from None
    if isinstance(obj, dict):
        if "tokens" not in obj:
            raise checks.UserError(
                f"--tokens {path} holds a dict without a 'tokens' entry (keys: {list(obj)[:5]}); "
                "save the ids as a tensor or as {'tokens': ids}"
            )
        obj = obj["tokens"]
    if (
        not isinstance(obj, torch.Tensor)
        or obj.ndim not in (1, 2)
        or obj.is_floating_point()
        or obj.is_complex()
        or obj.dtype == torch.bool
    ):
        what = (
            f"a {obj.ndim}-D {str(obj.dtype).removeprefix('torch.')} tensor"
            if isinstance(obj, torch.Tensor)
            else f"a {type(obj).__name__}"
        )
        raise checks.UserError(
            f"--tokens {path} holds {what}; expected integer token ids [B, S] or [S] (or a dict with 'tokens')"
        )
    if obj.numel() == 0:
        raise checks.UserError(f"--tokens {path} holds no token ids (shape {list(obj.shape)})")
    if int(obj.min()) < 0:
        raise checks.UserError(f"--tokens {path}: token ids must be >= 0, found {int(obj.min())}")
    return (obj[None] if obj.ndim == 1 else obj).long()


def save_tensor(t: torch.Tensor, path: Path, overwrite: bool = False) -> None:
    from nemo_cosmos_ar.conversion.native_io import atomic_outputs

    with atomic_outputs([path], overwrite) as (tmp,):
        torch.save(t, tmp)
