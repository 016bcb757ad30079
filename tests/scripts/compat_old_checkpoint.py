"""``python compat_old_checkpoint.py WORKDIR OLD_CONTEXT``: import random tiny weights into a NeMo checkpoint, replace
its context with ``OLD_CONTEXT`` (io.json + model.yaml written by older code), then read the weights back through
the NeMo reader and ``cosmos-ar convert export``; writes ``WORKDIR/results.json`` for test_checkpoint_compat.py."""

import json
import shutil
import sys
from pathlib import Path

import torch


def main() -> None:
    work, old = Path(sys.argv[1]), Path(sys.argv[2])
    from nemo_cosmos_ar.runtime import prepare_process

    prepare_process()  # this script is an entry point: the CUDA stand-ins on CPU
    from nemo_cosmos_ar.cli import main as cli
    from nemo_cosmos_ar.conversion import native_io
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.model.reference import ReferenceTransformer

    cfg = get_preset("tiny")
    sd = {k: v.to(torch.bfloat16) for k, v in ReferenceTransformer(cfg).init_random(seed=11).state_dict().items()}
    native_io.write_model_pt(work / "model.pt", native_io.iter_native(sd, cfg), cfg)
    ckpt = work / "nemo"
    assert cli(["convert", "import", "--source", str(work / "model.pt"), "--output", str(ckpt)]) == 0
    for name in ("io.json", "model.yaml"):
        shutil.copy(old / name, ckpt / "context" / name)
    res = {"context_is_old": (ckpt / "context" / "io.json").read_bytes() == (old / "io.json").read_bytes()}

    from nemo_cosmos_ar.conversion.nemo_reader import NeMoCheckpointReader

    reader = NeMoCheckpointReader(ckpt)
    res["reader_config"] = reader.config.name
    back = reader.state_dict()
    order = list(native_io.native_shapes(cfg))  # the released key order
    res["reader_bit_exact"] = list(back) == order and all(torch.equal(back[k], sd[k]) for k in sd)
    assert cli(["convert", "export", "--checkpoint", str(ckpt), "--output", str(work / "out.pt")]) == 0
    out = torch.load(work / "out.pt", weights_only=True)
    res["export_bit_exact"] = list(out) == ["model." + k for k in order] and all(
        torch.equal(out["model." + k], v) and out["model." + k].dtype == v.dtype for k, v in sd.items()
    )
    (work / "results.json").write_text(json.dumps(res))


if __name__ == "__main__":  # guarded: dist-checkpoint saves spawn processes that re-import __main__
    main()
