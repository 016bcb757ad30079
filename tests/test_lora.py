"""LoRA post-training (issue 16) on the tiny model, CPU and gloo: real NeMo PEFT runs, resume, and merged export.

One module fixture runs everything once (NeMo costs ~15 s per process to import):

1. ``lora_base.py``: random fp32 tiny weights imported as the base NeMo checkpoint, its logits of two clips.
2. A TP=2 LoRA run (torchrun, lr 2e-2, the base given as a relative path) of 12 steps, checkpoint after step 10,
   hard-killed after step 12. It records its logits before step 1 and which parameters changed by step 10.
3. Together: (a) a copy of it resumed at TP=2; (b) the run itself resumed at TP=1, which then exports its last
   checkpoint every way (``lora_export_checks.py``) and records the model's logits after step 12.

Beside step 1, a 3-step TP=1 LoRA run with activation recompute of the first layer (the 24 GB recipe's layout).
The recompute tests in this process compare losses and gradients with and without recompute.

The CLI dry runs of ``peft=lora`` are in test_launch.py.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO, child_env

SCRIPTS = REPO / "tests" / "scripts"
LR, STEPS = "0.02", "12"
LAYERS = 2  # the tiny model
TARGETS = {"linear_qkv": "self_attention", "linear_proj": "self_attention", "linear_fc1": "mlp", "linear_fc2": "mlp"}


def _popen(args: list[str], log: Path, nproc: int = 1) -> subprocess.Popen:
    launcher = (
        [sys.executable]
        if nproc == 1
        else [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone"]
    )
    # own session: --kill-after kills the process group, which must not be pytest's
    return subprocess.Popen(
        launcher + args,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        env=child_env(),
        cwd=REPO,
        start_new_session=True,
    )


def _wait(proc: subprocess.Popen, log: Path, ok=(0,), timeout: int = 600) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        pytest.fail(f"{proc.args} timed out\n{log.read_text()[-4000:]}")
    if rc not in ok:
        pytest.fail(f"{proc.args} -> {rc}\n{log.read_text()[-6000:]}")


def _losses(path: Path) -> dict[int, float]:
    return {d["step"]: d["loss"] for d in map(json.loads, path.read_text().splitlines())}


def _train(out: Path, losses: Path, *extra: str) -> list[str]:
    return [
        str(SCRIPTS / "train_tiny.py"),
        "--out",
        str(out),
        "--losses",
        str(losses),
        "--max-steps",
        STEPS,
        "--peft",
        "lora",
        "--lr",
        LR,
        *extra,
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> SimpleNamespace:
    w = tmp_path_factory.mktemp("lora")
    base, tokens = w / "base", w / "tokens.pt"
    # beside the base (one process each): the 24 GB recipe's recompute layout, random base, 3 steps
    recompute = _popen(
        [
            str(SCRIPTS / "train_tiny.py"),
            "--out",
            str(w / "recompute"),
            "--losses",
            str(w / "recompute.jsonl"),
            "--max-steps",
            "3",
            "--peft",
            "lora",
            "--lr",
            LR,
            "--recompute",
            "block",
            "1",
            "--frozen-report",
            str(w / "recompute_frozen.json"),
            "--frozen-at",
            "3",
        ],
        w / "recompute.log",
    )
    _wait(_popen([str(SCRIPTS / "lora_base.py"), str(w)], w / "base.log"), w / "base.log")
    rel_base = os.path.relpath(base, REPO)  # relative to the run's directory: recorded as an absolute path
    tp2 = _popen(
        _train(
            w / "run",
            w / "tp2.jsonl",
            "--tp",
            "2",
            "--base",
            rel_base,
            "--kill-after",
            STEPS,
            "--logits",
            str(tokens),
            str(w / "tp2"),
            "--frozen-report",
            str(w / "frozen.json"),
        ),
        w / "tp2.log",
        nproc=2,
    )
    _wait(tp2, w / "tp2.log", ok=(-9, 1))  # torchrun reports its workers' SIGKILL as 1, or is killed itself
    assert max(_losses(w / "tp2.jsonl")) == int(STEPS)
    shutil.copytree(w / "run", w / "run_copy")
    same_tp = _popen(
        _train(w / "run_copy", w / "resumed_tp2.jsonl", "--tp", "2", "--base", str(base)),
        w / "resumed_tp2.log",
        nproc=2,
    )
    at_tp1 = _popen(
        _train(
            w / "run",
            w / "resumed_tp1.jsonl",
            "--base",
            str(base),
            "--logits",
            str(tokens),
            str(w / "tp1"),
            "--export",
            str(w / "export"),
        ),
        w / "resumed_tp1.log",
    )
    _wait(same_tp, w / "resumed_tp2.log")
    _wait(at_tp1, w / "resumed_tp1.log")
    _wait(recompute, w / "recompute.log")
    ckpts = w / "run" / "posttraining" / "autoregressive_base" / "cosmos_ar_tiny_cpu_lora" / "checkpoints"
    return SimpleNamespace(
        w=w,
        base=base,
        ckpts=ckpts,
        export=w / "export",
        results=json.loads((w / "export" / "results.json").read_text()),
    )


def _max_diff(a, b) -> float:
    return float((torch.as_tensor(a).float() - torch.as_tensor(b).float()).abs().max())


# ---- training ------------------------------------------------------------------------------------------------
def test_only_the_adapters_train(runs):
    """After 10 steps every base weight is bit-identical and every adapter matrix (A and B of 4 linears x 2
    layers) has changed, on both TP ranks."""
    want = {
        f"decoder.layers.{i}.{parent}.{lin}.adapter.linear_{io}.weight"
        for i in range(LAYERS)
        for lin, parent in TARGETS.items()
        for io in ("in", "out")
    }
    for rank in (0, 1):
        rep = json.loads((runs.w / f"frozen.json.rank{rank}").read_text())
        strip = lambda names: {n[n.index("decoder.") :] for n in names}  # noqa: E731  (module.module. prefix)
        assert rep["step"] == 10 and rep["params"] == 19 + 16, rep  # 19 base tensors, 16 adapter matrices
        assert strip(rep["trainable"]) == want, rank
        assert rep["changed"] == rep["trainable"], rank  # nothing else changed, every adapter did


def test_a_run_with_recompute_trains_every_adapter(runs):
    """A real NeMo LoRA run (Megatron DDP and optimizer) with full recompute of layer 0 of 2 (method block, as the
    24 GB recipe): after 3 steps only the 16 adapter matrices changed, all of them. Without the decoder-input hook
    the 4 B matrices of layer 0 stayed 0 (its A matrices still moved: weight decay alone)."""
    rep = json.loads((runs.w / "recompute_frozen.json.rank0").read_text())
    assert rep["step"] == 3 and rep["params"] == 19 + 16 and len(rep["trainable"]) == 16, rep
    assert rep["changed"] == rep["trainable"]
    losses = _losses(runs.w / "recompute.jsonl")
    assert sorted(losses) == [1, 2, 3] and losses[3] < losses[1] - 0.1, losses  # observed: 11.086 -> 10.864


def test_loss_falls(runs):
    tp2 = _losses(runs.w / "tp2.jsonl")
    assert sorted(tp2) == list(range(1, 13))
    assert tp2[1] == pytest.approx(math.log(64000), abs=0.01)  # the random base model
    assert tp2[12] < tp2[1] - 0.3 and tp2[11] < tp2[2] - 0.3, tp2  # observed: 11.07 -> 10.43


def test_at_initialisation_the_lora_model_is_the_base_model(runs):
    """Logits before step 1 (adapters in place, B = 0; TP=2) against the base checkpoint's (``convert logits``,
    TP=1): equal up to fp32 reduction order."""
    lora, base = torch.load(runs.w / "tp2_init.pt"), torch.load(runs.w / "base_logits.pt")
    assert lora.shape == base.shape == (2, 71, 64000)
    assert _max_diff(lora, base) < 1e-5


def test_kill_and_resume_is_exact(runs):
    """The run hard-killed after step 12 resumes its step-10 checkpoint (adapters, Adam state, schedule, data
    position) and repeats steps 11-12: at TP=2 exactly (up to 1e-6), at TP=1 within 1e-5."""
    ref = _losses(runs.w / "tp2.jsonl")
    same_tp, at_tp1 = _losses(runs.w / "resumed_tp2.jsonl"), _losses(runs.w / "resumed_tp1.jsonl")
    assert sorted(same_tp) == sorted(at_tp1) == [11, 12]
    for step in (11, 12):
        assert abs(same_tp[step] - ref[step]) <= 1e-6, (step, same_tp[step], ref[step])
        assert abs(at_tp1[step] - ref[step]) < 1e-5, (step, at_tp1[step], ref[step])


def test_checkpoints_hold_only_adapters_and_the_base_pointer(runs):
    from torch.distributed.checkpoint import FileSystemReader

    ckpt = runs.ckpts / "step=9"  # after step 10 (NeMo names it by the 0-based step)
    keys = [
        k
        for k in FileSystemReader(str(ckpt / "weights")).read_metadata().state_dict_metadata
        if "_extra_state" not in k
    ]
    adapters = {
        f"module.decoder.layers.{parent}.{lin}.adapter.linear_{io}.weight"
        for lin, parent in TARGETS.items()
        for io in ("in", "out")
    }
    moments = {f"optimizer.state.{m}.{k}" for k in adapters for m in ("exp_avg", "exp_avg_sq")}
    assert set(keys) == adapters | moments
    meta = json.loads((ckpt / "weights" / "adapter_metadata.json").read_text())
    assert meta == {"model_ckpt_path": str(runs.base)}  # absolute: found again from any directory
    size = sum(f.stat().st_size for f in (ckpt / "weights").iterdir())
    base_size = sum(f.stat().st_size for f in (runs.base / "weights").iterdir())
    assert size < base_size / 20, (size, base_size)  # 72K adapter parameters + moments vs 8.3M weights


# ---- activation recompute (in process, fp32) ------------------------------------------------------------------
# The tiny NeMo model with CosmosLoRA applied as NeMo applies it, trained 3 steps by hand (Adam, lr 2e-2) on fixed
# random clips: without recompute, with full recompute of every layer (uniform, one layer per checkpoint) and of the
# first half (block: layer 0 of 2, the 24 GB recipe's layout). Megatron's recompute is reentrant: a checkpointed
# layer whose input needs no grad (frozen embedding) used to drop out of the backward with its adapters.
RECOMPUTE = {
    "none": {},
    "all_uniform": dict(recompute_granularity="full", recompute_method="uniform", recompute_num_layers=1),
    "first_half_block": dict(recompute_granularity="full", recompute_method="block", recompute_num_layers=1),
}


def _tiny_lora_model(state: dict | None = None, **recompute):
    from lightning.pytorch.trainer.states import TrainerFn

    from nemo_cosmos_ar.nemo_glue.lora import CosmosLoRA
    from nemo_cosmos_ar.nemo_glue.model import CosmosARConfigTiny, CosmosARModel

    model = CosmosARModel(CosmosARConfigTiny(bf16=False, params_dtype=torch.float32, **recompute))
    model.configure_model()
    model._trainer = SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING))  # PEFT asks if it is fitting
    model = CosmosLoRA()(model)
    if state is not None:  # the same base and adapter initialisation in every variant
        params = dict(model.named_parameters())
        assert params.keys() == state.keys()
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(state[k])
    return model


def _train_by_hand(model, steps: int = 3) -> dict:
    tokens = torch.randint(0, 64000, (2, 72), generator=torch.Generator().manual_seed(11))
    batch = {"labels": tokens[:, 1:], "loss_mask": torch.ones(2, 71)}
    pos = torch.arange(71)[None].expand(2, -1)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.Adam(params.values(), lr=2e-2)
    out = {"losses": [], "grads": [], "start": {n: p.detach().clone() for n, p in model.named_parameters()}}
    model.train()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=tokens[:, :-1], position_ids=pos, attention_mask=None)
        loss_sum, n, _ = model.training_loss_reduction.forward(batch, logits)
        loss = loss_sum / n
        loss.backward()
        out["losses"].append(float(loss))
        out["grads"].append({k: None if p.grad is None else p.grad.clone() for k, p in params.items()})
        opt.step()
    out["end"] = {n: p.detach().clone() for n, p in model.named_parameters()}
    return out


class _Runs(dict):
    """The hand-trained runs by RECOMPUTE name, each trained on first use (a failing one fails only its tests)."""

    def __missing__(self, name: str) -> dict:
        self[name] = _train_by_hand(_tiny_lora_model(self.state, **RECOMPUTE[name]))
        return self[name]


@pytest.fixture(scope="module")
def recompute_runs(megatron_tp1) -> dict:
    ref = _tiny_lora_model()
    runs = _Runs()
    runs.state = {k: p.detach().clone() for k, p in ref.named_parameters()}
    runs["none"] = _train_by_hand(ref)
    return runs


@pytest.mark.parametrize("name", ["all_uniform", "first_half_block"])
def test_recompute_trains_every_adapter(recompute_runs, name):
    """With recompute, after 3 steps every adapter matrix (A and B of 4 linears x 2 layers) has changed and every
    base weight is bit-identical."""
    run = recompute_runs[name]
    adapters = {
        f"module.decoder.layers.{i}.{parent}.{lin}.adapter.linear_{io}.weight"
        for i in range(LAYERS)
        for lin, parent in TARGETS.items()
        for io in ("in", "out")
    }
    assert set(run["grads"][0]) == adapters
    assert len(run["start"]) == 19 + 16
    changed = {k for k in run["start"] if not torch.equal(run["start"][k], run["end"][k])}
    assert changed == adapters, sorted(adapters - changed)


@pytest.mark.parametrize("name", ["all_uniform", "first_half_block"])
def test_recompute_gives_the_same_loss_and_gradients(recompute_runs, name):
    """Losses of steps 1-3 and every adapter gradient of steps 1-3 equal those without recompute within 1e-6 (fp32;
    step 1 has A's gradients 0 as B starts at 0, steps 2-3 have all non-zero)."""
    ref, run = recompute_runs["none"], recompute_runs[name]
    assert ref["losses"][0] == pytest.approx(math.log(64000), abs=0.05) and ref["losses"][2] < ref["losses"][0]
    for step in range(3):
        assert abs(run["losses"][step] - ref["losses"][step]) <= 1e-6, (step, run["losses"], ref["losses"])
        for k, g in ref["grads"][step].items():
            assert run["grads"][step][k] is not None, (step, k)
            assert _max_diff(run["grads"][step][k], g) <= 1e-6, (step, k)
            assert step == 0 or float(g.abs().max()) > 1e-4, (step, k)  # a real gradient, not a trivial match


def test_decoder_input_needs_grad_only_in_training_with_recompute(megatron_tp1):
    """The embedding hook is idempotent and acts only in training steps of a model with recompute: without
    recompute, in eval mode and under no_grad the decoder input stays without requires_grad (nothing changes)."""
    from nemo_cosmos_ar.nemo_glue.lora import require_decoder_input_grad

    seen = []
    tokens, pos = torch.randint(0, 64000, (1, 71)), torch.arange(71)[None]
    for recompute in ("none", "first_half_block"):
        model = _tiny_lora_model(**RECOMPUTE[recompute])
        require_decoder_input_grad(model)  # a second time: still one hook
        embedding = model.module.embedding
        assert len(embedding._forward_hooks) == 1
        embedding.register_forward_hook(lambda m, a, out, r=recompute: seen.append((r, m.training, out.requires_grad)))
        for train, grad in ((True, True), (False, True), (True, False)):
            model.train(train)
            with torch.set_grad_enabled(grad):
                model(input_ids=tokens, position_ids=pos, attention_mask=None)
    assert seen == [
        ("none", True, False),
        ("none", False, False),
        ("none", True, False),
        ("first_half_block", True, True),
        ("first_half_block", False, False),
        ("first_half_block", True, False),
    ]


def _profiled_lora_step(model) -> tuple[list, dict]:
    """One forward + backward of a batch-1 clip: the GEMMs that touch the 64,000-way output layer, and the grads."""
    tokens = torch.randint(0, 64000, (1, 72), generator=torch.Generator().manual_seed(5))
    batch = {"labels": tokens[:, 1:], "loss_mask": torch.ones(1, 71)}
    model.train()
    model.zero_grad(set_to_none=True)
    with torch.profiler.profile(record_shapes=True) as prof:
        logits = model(input_ids=tokens[:, :-1], position_ids=torch.arange(71)[None], attention_mask=None)
        loss_sum, n, _ = model.training_loss_reduction.forward(batch, logits)
        (loss_sum / n).backward()
    gemms = [
        (e.name, e.input_shapes)
        for e in prof.events()
        if e.name in ("aten::mm", "aten::bmm", "aten::addmm") and any(64000 in s for s in e.input_shapes)
    ]
    return gemms, {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}


def test_the_frozen_output_layer_backward_is_one_2d_gemm(megatron_tp1, monkeypatch):
    """Under LoRA the output layer is frozen; its input gradient is one [71, 64000] @ [64000, 64] mm per step (as a
    trainable output layer's), not Megatron's frozen path's bmm of 71 one-row products that re-reads the weight per
    token (issue 16: 509 of 698 ms of a 4B LoRA step on an H200). Every adapter gradient equals the unpatched run's
    within 1e-6 (fp32)."""
    from megatron.core.tensor_parallel import layers

    model = _tiny_lora_model()  # configure_model installs model/frozen_linear.py
    gemms, grads = _profiled_lora_step(model)
    assert gemms == [("aten::mm", [[71, 64], [64, 64000]]), ("aten::mm", [[71, 64000], [64000, 64]])]
    monkeypatch.setattr(layers, "LinearWithFrozenWeight", layers.LinearWithFrozenWeight.__base__)
    gemms_before, grads_before = _profiled_lora_step(model)
    assert gemms_before == [("aten::mm", [[71, 64], [64, 64000]]), ("aten::bmm", [[71, 1, 64000], [71, 64000, 64]])]
    assert grads.keys() == grads_before.keys() and len(grads) == 16
    assert max(_max_diff(grads[k], grads_before[k]) for k in grads) <= 1e-6
    assert max(float(g.abs().max()) for k, g in grads.items() if "linear_out" in k) > 1e-4  # real gradients


# ---- export ---------------------------------------------------------------------------------------------------
def test_merged_export_is_the_lora_model(runs):
    """``convert export`` merges the adapters into the base: the exported model.pt (fp32) gives the LoRA model's
    logits after step 12 (fp32, TP=1) within 1e-5, read the way ``cosmos-ar generate`` reads a model.pt."""
    lora, merged = torch.load(runs.w / "tp1_end.pt"), torch.load(runs.export / "merged_logits.pt")
    assert merged.shape == lora.shape == (2, 71, 64000)
    assert _max_diff(merged, lora) < 1e-5
    assert _max_diff(lora, torch.load(runs.w / "base_logits.pt")) > 0.1  # the adapters did change the model


def test_merged_export_formats(runs):
    """model.pt in the released key order with only the adapted linears changed; TP shards and the HF folder hold
    exactly the bf16 model.pt's tensors, and so does NeMo's own ``llm.export_ckpt``; --base finds a moved base."""
    from nemo_cosmos_ar.conversion import native_io
    from nemo_cosmos_ar.model.presets import get_preset

    cfg = get_preset("tiny")
    base = torch.load(runs.w / "model.pt", weights_only=True)
    merged = torch.load(runs.export / "merged" / "model.pt", weights_only=True)
    assert list(merged) == ["model." + k for k in native_io.native_shapes(cfg)]
    assert all(t.dtype == torch.float32 for t in merged.values())
    adapted = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
    for k in merged:
        if k.split(".")[-2] in adapted:
            assert not torch.equal(merged[k], base[k]), k
        else:
            assert torch.equal(merged[k], base[k]), k  # embeddings, norms, output head: untouched
    bf16 = torch.load(runs.export / "merged_bf16.pt", weights_only=True)
    assert all(torch.equal(bf16[k], merged[k].to(torch.bfloat16)) for k in merged)
    shards = native_io.load_native(runs.export / "merged_tp2")
    assert shards.kind == "TP shards" and len(shards.files) == 2
    hf = native_io.load_native(runs.export / "merged_hf")
    for k in native_io.native_shapes(cfg):
        assert torch.equal(shards.tensors[k], bf16["model." + k]) and torch.equal(hf.tensors[k], bf16["model." + k])
    moved = torch.load(runs.export / "moved_base" / "model.pt", weights_only=True)
    assert all(torch.equal(moved[k], merged[k]) for k in merged)
    nemo_export = torch.load(runs.export / "nemo_export" / "model.pt", weights_only=True)
    assert list(nemo_export) == list(bf16) and all(torch.equal(nemo_export[k], bf16[k]) for k in bf16)


def test_adapters_only_export(runs):
    """--adapters-only: PEFT layout under cosmos-predict1's module names; base + (alpha/r)·B·A of each native
    linear rebuilds the merged export (fp32, 1e-6)."""
    from nemo_cosmos_ar.conversion.native_io import read_safetensors

    folder = runs.export / "adapters"
    assert sorted(os.listdir(folder)) == ["adapter_config.json", "adapter_model.safetensors"]
    conf = json.loads((folder / "adapter_config.json").read_text())
    assert {
        k: conf[k]
        for k in (
            "peft_type",
            "r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "bias",
            "base_model_name_or_path",
            "cosmos_ar_preset",
            "torch_dtype",
        )
    } == {
        "peft_type": "LORA",
        "r": 32,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "target_modules": ["wq", "wk", "wv", "wo", "w1", "w3", "w2"],
        "bias": "none",
        "base_model_name_or_path": str(runs.base),
        "cosmos_ar_preset": "tiny",
        "torch_dtype": "float32",
    }
    t = read_safetensors(folder / "adapter_model.safetensors")
    assert len(t) == LAYERS * 7 * 2
    assert t["base_model.model.layers.0.attention.wq.lora_A.weight"].shape == (32, 64)
    assert t["base_model.model.layers.1.attention.wk.lora_B.weight"].shape == (64, 32)
    assert t["base_model.model.layers.1.feed_forward.w2.lora_A.weight"].shape == (32, 160)
    base = torch.load(runs.w / "model.pt", weights_only=True)
    merged = torch.load(runs.export / "merged" / "model.pt", weights_only=True)
    for i in range(LAYERS):
        for module in (
            "attention.wq",
            "attention.wk",
            "attention.wv",
            "attention.wo",
            "feed_forward.w1",
            "feed_forward.w3",
            "feed_forward.w2",
        ):
            a, b = (t[f"base_model.model.layers.{i}.{module}.lora_{x}.weight"] for x in "AB")
            key = f"model.layers.{i}.{module}.weight"
            assert _max_diff(base[key] + 1.0 * b @ a, merged[key]) < 1e-6, key  # alpha/r = 32/32
    # a random-init run's adapters export alone (their base is only named: none)
    conf = json.loads((runs.export / "random_init_adapters" / "adapter_config.json").read_text())
    assert conf["base_model_name_or_path"] == "" and conf["r"] == 32


def test_export_refusals_are_one_line(runs):
    res, last, out = runs.results, runs.results["last"], runs.export
    expected = {
        "stale_base": f"the base checkpoint of {out}/stale_ckpt, {out}/no_such_base (recorded in "
        f"{out}/stale_ckpt/weights/adapter_metadata.json), does not exist; pass --base <the NeMo "
        "checkpoint the LoRA run started from>",
        "random_init_merge": f"{out}/random_init_ckpt holds LoRA adapters of a run that started from random weights "
        "(allow_random_init, no base checkpoint), so there is no base model to merge into; "
        "--adapters-only writes the adapters alone",
        "adapters_only_tp": "--adapters-only writes one folder of adapters (PEFT layout): --format and --tp apply to "
        "the merged model only",
        "adapters_only_full": f"--adapters-only applies to LoRA checkpoints; {runs.base} holds all weights of its "
        "model (it has no weights/adapter_metadata.json)",
        "base_on_full": f"--base applies to LoRA checkpoints only; {runs.base} holds all weights of its model",
        "logits_of_adapters": f"{last} holds LoRA adapters only: `cosmos-ar convert export --checkpoint {last} "
        "--output <dir>` merges them into the base; run logits on that",
    }
    for name, message in expected.items():
        assert res[name] == {"rc": 1, "stderr": f"cosmos-ar convert: error: {message}"}, name
    assert res["random_init_adapters"]["rc"] == 0 and res["left_behind"] == []


# ---- recipes, settings, FLOP count (no training) --------------------------------------------------------------
def test_every_recipe_takes_peft():
    import nemo_run as run

    from nemo_cosmos_ar.nemo_glue.callbacks import CosmosARMetrics
    from nemo_cosmos_ar.nemo_glue.lora import CosmosLoRA, CosmosLoRAMetrics
    from nemo_cosmos_ar.recipes import cosmos_ar

    factories = {name: f for name, (_, f) in cosmos_ar.GPU_RECIPES.items()}
    factories["cosmos_ar_tiny_cpu"] = cosmos_ar.cosmos_ar_tiny_cpu
    assert len(factories) == 7
    for name, factory in factories.items():
        lora = factory(peft="lora")
        assert lora.peft == run.Config(
            CosmosLoRA,
            target_modules=["linear_qkv", "linear_proj", "linear_fc1", "linear_fc2"],
            dim=32,
            alpha=32,
            dropout=0.0,
        ), name
        assert lora.log.name == name.removesuffix("_lora_24gb") + ("_lora_24gb" if "24gb" in name else "_lora")
        assert lora.trainer.callbacks[1].__fn_or_cls__ is CosmosLoRAMetrics, name
        if "24gb" in name:
            continue
        full = factory()
        assert full.peft is None and full.log.name == name
        assert full.trainer.callbacks[1].__fn_or_cls__ is CosmosARMetrics, name
    small = cosmos_ar.cosmos_ar_4b_tealrobotsmall_lora_24gb()
    assert small.peft is not None and small.trainer.plugins.precision == "bf16"
    assert (small.model.config.recompute_granularity, small.model.config.recompute_num_layers) == ("full", 8)
    assert tuple(small.model.config.latent_shape) == (5, 24, 40) and small.trainer.devices == 1
    with pytest.raises(cosmos_ar.RecipeError, match=r"^cosmos_ar_4b_tealrobotsmall_lora_24gb is the LoRA variant"):
        cosmos_ar.cosmos_ar_4b_tealrobotsmall_lora_24gb(peft=None)
    with pytest.raises(cosmos_ar.RecipeError) as e:
        cosmos_ar.cosmos_ar_4b_tealrobot_tp4(peft="dora")
    assert str(e.value) == (
        "peft='dora': Cosmos AR recipes take peft='lora' (LoRA adapters on the frozen model) or "
        "peft=None (the default: train all weights)"
    )
    from nemo.collections import llm

    with pytest.raises(cosmos_ar.RecipeError, match=r"^peft='lora' adapts a trained model: use `nemo llm finetune`"):
        cosmos_ar.tiny_cpu_recipe(fn=llm.pretrain, peft="lora")


def test_lora_settings_are_checked_in_one_line():
    from nemo_cosmos_ar.nemo_glue.lora import CosmosLoRA, check_lora

    cases = {
        (0, 32, 0.0, ("linear_qkv",), 1): "peft.dim=0: the LoRA rank must be an integer >= 1 (default 32)",
        (30, 32, 0.0, ("linear_qkv",), 4): "peft.dim=30 is not divisible by the tensor-parallel size 4: the adapters "
        "are split across TP ranks like their layers; use a multiple of 4",
        (32, 0, 0.0, ("linear_qkv",), 1): "peft.alpha=0: must be a number > 0 (the update is scaled by alpha/dim)",
        (32, 32, 1.0, ("linear_qkv",), 1): "peft.dropout=1.0: must be a probability in [0, 1)",
        (32, 32, 0.0, ("wq",), 1): "peft.target_modules=['wq']: name the linears to adapt, any of linear_qkv, "
        "linear_proj, linear_fc1, linear_fc2 (or NeMo wildcard patterns such as "
        "'*.self_attention.linear_*')",
    }
    for args, message in cases.items():
        with pytest.raises(ValueError) as e:
            check_lora(*args[:3], list(args[3]), args[4])
        assert str(e.value) == message
    with pytest.raises(ValueError, match=r"^peft.dim=-4: the LoRA rank"):
        CosmosLoRA(dim=-4)


def test_adapted_linears_and_the_lora_flop_count():
    """Which linears NeMo's matcher adapts (wildcards included), adapter sizes, and the LoRA model FLOPs: 4 per
    frozen weight (no weight gradient), 6 per adapter weight, attention as in full training."""
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.nemo_glue.lora import CosmosLoRA, lora_train_flops_per_token

    tiny, b4, b12 = (get_preset(n) for n in ("tiny", "4b", "12b"))
    attn = CosmosLoRA(target_modules=["*.self_attention.linear_*"], dim=8)
    assert attn.adapted(tiny) == {
        f"decoder.layers.{i}.self_attention.{lin}": size
        for i in range(2)
        for lin, size in (("linear_qkv", (64, 256)), ("linear_proj", (128, 64)))
    }
    assert attn.num_adapter_params(tiny) == 2 * 8 * ((64 + 256) + (128 + 64))
    attn.check_layers(tiny)
    # a linear adapted in some layers only cannot be checkpointed (weights are stored stacked over the layers)
    some = CosmosLoRA(target_modules=["*.layers.0.*.linear_qkv", "linear_fc2"], dim=8)
    assert list(some.adapted(tiny)) == [
        "decoder.layers.0.self_attention.linear_qkv",
        "decoder.layers.0.mlp.linear_fc2",
        "decoder.layers.1.mlp.linear_fc2",
    ]
    with pytest.raises(ValueError) as e:
        some.check_layers(tiny)
    assert str(e.value) == (
        "peft.target_modules=['*.layers.0.*.linear_qkv', 'linear_fc2'] adapts linear_qkv in layer(s) [0] of 2 only: "
        "checkpoints store each weight stacked over all layers, so adapt a linear in every layer or in none (name "
        "it, e.g. linear_qkv)"
    )
    lora = CosmosLoRA()
    assert lora.num_adapter_params(tiny) == 71_680  # the 16 matrices of test_only_the_adapters_train
    assert lora.num_adapter_params(b4) == 35_651_584 and lora.num_adapter_params(b12) == 94_371_840
    # 4B at 4,800 tokens (4,799 trained positions): 4·3,751,944,192 + 6·35,651,584 + 6·16·4799·4096
    assert lora_train_flops_per_token(b4, lora, 4799) == 17_108_729_856
    assert b4.train_flops_per_token(4799) == 24_398_708_736  # full post-training, for comparison


def test_resuming_a_random_init_lora_run_is_refused(tmp_path):
    from types import SimpleNamespace as NS

    from nemo_cosmos_ar.nemo_glue.resume import CosmosAutoResume

    ckpt = tmp_path / "step=9-last"
    (ckpt / "weights").mkdir(parents=True)
    (ckpt / "weights" / "adapter_metadata.json").write_text(json.dumps({"model_ckpt_path": "None"}))
    resume = CosmosAutoResume(resume_from_path=str(ckpt), allow_random_init=True)
    with pytest.raises(ValueError) as e:
        resume.setup(NS(strategy=NS()))
    assert str(e.value) == (
        f"{ckpt} holds LoRA adapters of a run that started from random weights (allow_random_init, no base "
        "checkpoint): without the base they adapt, they cannot be resumed; start a new run from a base_checkpoint"
    )
