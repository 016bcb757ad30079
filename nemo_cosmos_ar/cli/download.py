"""``cosmos-ar download``: the released checkpoints, laid out as cosmos-predict1 expects (NVIDIA's
``download_autoregressive_checkpoints.py``).

Fetches, into ``--checkpoint-dir`` (default ``checkpoints``): the AR model of each ``--model-sizes`` entry
(``Cosmos-Predict1-4B/model.pt``, ...), the DV8x16x16 and CV8x8x8 tokenizers, the 7B diffusion decoder with its
``aux_vars.pt``, and the video guardrail weights, which the model repos carry (``Cosmos-Predict1-4B/guardrail/``: the
safety filter and the face detector; not the text guardrails). The NVIDIA repos are gated: create a Read token,
``huggingface-cli login`` (or set ``HF_TOKEN``) and accept each model's licence on its Hub page first.

Re-running is cheap and safe: files with a known MD5 that match are skipped without a request, other complete files
are confirmed by huggingface_hub, and an interrupted file resumes where it stopped.

Examples::

  cosmos-ar download --model-sizes 4B --checkpoint-dir checkpoints
  cosmos-ar download --model_sizes 4B 12B --dry-run          # what would be fetched, and its size
  cosmos-ar download --no-diffusion-decoder --no-guardrail   # only what `cosmos-ar generate` needs with its flags
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split("\n\n", 1)[1]
    p.add_argument(
        "--model-sizes",
        "--model_sizes",
        nargs="+",
        default=["4B"],
        metavar="SIZE",
        help="AR models to fetch: 4B, 12B (default 4B). The 5B/13B Video2World models are refused: this "
        "project cannot run them yet",
    )
    p.add_argument(
        "--checkpoint-dir",
        "--checkpoint_dir",
        default="checkpoints",
        help="root folder, cosmos-predict1's --checkpoint_dir (default: checkpoints)",
    )
    p.add_argument(
        "--dry-run",
        "--dry_run",
        action="store_true",
        help="list the files that would be fetched and their sizes; write nothing",
    )
    p.add_argument(
        "--no-diffusion-decoder",
        "--no_diffusion_decoder",
        dest="diffusion_decoder",
        action="store_false",
        help="skip the 7B diffusion decoder and the CV8x8x8 tokenizer it decodes into",
    )
    p.add_argument(
        "--no-guardrail",
        "--no_guardrail",
        dest="guardrail",
        action="store_false",
        help="skip the guardrail/ folders of the model repos (then run generate with --disable-guardrail)",
    )


def run(args: argparse.Namespace) -> int:
    from nemo_cosmos_ar.download import download

    download(
        args.model_sizes,
        args.checkpoint_dir,
        diffusion_decoder=args.diffusion_decoder,
        guardrail=args.guardrail,
        dry_run=args.dry_run,
    )
    return 0
