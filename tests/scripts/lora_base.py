"""The base model of the LoRA tests, in one process (NeMo imports once).

    python lora_base.py WORKDIR

Writes random tiny weights in fp32 (``model.pt``, so every later comparison is fp32), imports them into the NeMo
checkpoint ``WORKDIR/base`` with ``cosmos-ar convert import``, and saves two clips' token ids (``tokens.pt``) and the
base model's fp32 logits of them (``base_logits.pt``, ``cosmos-ar convert logits``).
"""

import sys
from pathlib import Path

import torch


def main() -> None:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    from nemo_cosmos_ar.cli import main as cli
    from nemo_cosmos_ar.conversion import native_io
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer

    cfg = get_preset("tiny")
    state = ReferenceTransformer(cfg).init_random(seed=7).state_dict()
    torch.save({"model." + k: state[k].float().contiguous() for k in native_io.native_shapes(cfg)}, work / "model.pt")
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.seq_length - 1), generator=torch.Generator().manual_seed(3))
    torch.save(tokens, work / "tokens.pt")
    assert cli(["convert", "import", "--source", str(work / "model.pt"), "--output", str(work / "base")]) == 0
    assert (
        cli(
            [
                "convert",
                "logits",
                "--checkpoint",
                str(work / "base"),
                "--tokens",
                str(work / "tokens.pt"),
                "--output",
                str(work / "base_logits.pt"),
            ]
        )
        == 0
    )


if __name__ == "__main__":  # the importer's workers re-import this file
    main()
