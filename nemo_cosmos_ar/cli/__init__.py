"""``cosmos-ar``: the project's console command. Each subcommand lives in its own module and is imported only
when used, so ``cosmos-ar --help`` stays fast (no NeMo import).

Quiet by default: the stack's import-time chatter (torch's pynvml FutureWarning, Megatron's CPU fallbacks, NeMo's
"could not import" notes, telemetry notices) is hidden, so a command prints its own output only. ``--verbose``
(anywhere on the line) shows all of it; errors are always shown.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from typing import NoReturn

# name -> (module, one-line help). Each module defines add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "describe": ("nemo_cosmos_ar.cli.describe", "print a model's architecture, size, token grid and FLOPs"),
    "convert": ("nemo_cosmos_ar.cli.convert", "convert checkpoints between cosmos-predict1 and NeMo; parity logits"),
    "prepare-data": ("nemo_cosmos_ar.cli.prepare_data", "tokenize a folder of videos into a training dataset"),
    "generate": ("nemo_cosmos_ar.cli.generate", "image or 9-frame video -> 33-frame video (discrete decoder path)"),
    "download": ("nemo_cosmos_ar.cli.download", "fetch the released checkpoints from the Hugging Face Hub"),
    "check-precision": (
        "nemo_cosmos_ar.cli.check_precision",
        "measure what --decode-weights int8 and --diffusion-decoder-gemm fp8 change, on your weights and a video",
    ),
}


# Subcommands that build Megatron-Core / NeMo objects get the process-wide fixes first (``runtime.prepare_process``:
# NumPy 2 compatibility; the CUDA stand-ins on a CPU-only machine). Value: whether NeMo's stand-in is needed too.
# ``generate`` sets up Megatron itself (``runtime.init_megatron``); the other commands need neither.
PREPARE_PROCESS: dict[str, bool] = {"convert": True}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosmos-ar",
        description="Post-train, convert and run NVIDIA Cosmos-Predict1 autoregressive video world models "
        "with Megatron-Core / NeMo 2. Training runs through `nemo llm finetune --factory cosmos_ar_...`.",
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
        # SUPPRESS: a subcommand's default must not overwrite a --verbose given before the subcommand.
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


VERBOSE_HELP = "also show third-party warnings and log messages (hidden by default)"


def wants_verbose(argv: list[str]) -> bool:
    """``--verbose`` anywhere before a ``--`` separator (read before argparse runs: the filters must be in place
    before the subcommand modules import torch)."""
    head = argv[: argv.index("--")] if "--" in argv else argv
    return "--verbose" in head


@contextlib.contextmanager
def quiet_third_party(verbose: bool) -> Iterator[None]:
    """Hide warnings that other packages raise and their log records up to WARNING (errors still show); our own
    warnings stay visible. Restores the previous state on exit, so in-process callers (tests) are unaffected."""
    if verbose:
        yield
        return
    saved_env = os.environ.get("PYTHONWARNINGS")
    saved_disable = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=r"nemo_cosmos_ar\b")
        # Worker processes (checkpoint writers, data loaders) start with fresh filters: tell them through the env.
        os.environ["PYTHONWARNINGS"] = "ignore"
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(saved_disable)
            if saved_env is None:
                os.environ.pop("PYTHONWARNINGS", None)
            else:
                os.environ["PYTHONWARNINGS"] = saved_env


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # generate's timing line counts what runs before its work as "startup"
    argv = list(sys.argv[1:] if argv is None else argv)
    with quiet_third_party(wants_verbose(argv)):
        parser = build_parser()
        args = parser.parse_args(argv)
        args.started = started
        if args.command is None:
            parser.print_help()
            return 2
        if args.command in PREPARE_PROCESS:
            from nemo_cosmos_ar.runtime import prepare_process

            prepare_process(nemo=PREPARE_PROCESS[args.command])
        try:
            return int(importlib.import_module(SUBCOMMANDS[args.command][0]).run(args) or 0)
        except (ValueError, FileNotFoundError, FileExistsError, KeyError) as e:
            # User errors: one clear message, no traceback.
            print(f"cosmos-ar {args.command}: error: {e}", file=sys.stderr)
            return 1


def entry() -> NoReturn:
    """The console script: ``main()``, then the exit. A command that fails while a load still runs on a
    background thread (``runtime.Background``: the diffusion decoder, the guardrails, FlashAttention-4's import)
    leaves at once through ``os._exit`` with its exit code, its error already printed; a normal interpreter shutdown
    would abort the process under that thread (exit -6) after the message."""
    try:
        code: int | str | None = main()
    except SystemExit as e:
        code = e.code
    except BaseException:
        if not _busy():
            raise
        import traceback

        traceback.print_exc()
        code = 1
    finish(code)


def finish(code: int | str | None) -> NoReturn:
    """End the process with ``code`` as ``entry`` does after ``main()`` (also for callers that run ``main``
    in-process and then exit, e.g. bench/bench_generate_e2e.py's child)."""
    if code not in (0, None) and _busy():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
    _close_process_group(ok=code in (0, None))
    sys.exit(code)


def _close_process_group(ok: bool) -> None:
    """Close the process group a command left open (generate keeps its group for a caller's later collectives), so
    NCCL does not warn at exit that destroy_process_group() was not called. Across ranks only after a success: a
    rank that failed alone must not wait on the others."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    if not ok and dist.get_world_size() > 1:
        return
    parallel_state = sys.modules.get("megatron.core.parallel_state")
    if parallel_state is not None:
        parallel_state.destroy_model_parallel()
    dist.destroy_process_group()


def _busy() -> bool:
    runtime = sys.modules.get("nemo_cosmos_ar.runtime")  # never imported: no background thread was started
    return bool(runtime is not None and runtime.background_busy())


if __name__ == "__main__":
    entry()
