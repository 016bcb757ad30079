"""``cosmos-ar``: the project's console command. Each subcommand lives in its own module and is imported only
when used, so ``cosmos-ar --help`` stays fast (no NeMo import)."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Each module defines add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "describe": ("nemo_cosmos_ar.cli.describe", "print a model's architecture, size, token grid and FLOPs"),
    "convert": ("nemo_cosmos_ar.cli.convert", "convert checkpoints between cosmos-predict1 and NeMo; parity logits"),
    "prepare-data": ("nemo_cosmos_ar.cli.prepare_data", "tokenize a folder of videos into a training dataset"),
    "generate": ("nemo_cosmos_ar.cli.generate", "image or 9-frame video -> 33-frame video (discrete decoder path)"),
    "download": ("nemo_cosmos_ar.cli.download", "fetch the released checkpoints from the Hugging Face Hub"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosmos-ar",
        description="Post-train, convert and run NVIDIA Cosmos-Predict1 autoregressive video world models "
        "with Megatron-Core / NeMo 2. Training runs through `nemo llm finetune --factory cosmos_ar_...`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(SUBCOMMANDS[args.command][0]).run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as e:
        # User errors: one clear message, no traceback.
        print(f"cosmos-ar {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
