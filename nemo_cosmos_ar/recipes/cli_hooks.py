"""What the ``nemo`` CLI (nemo-run 0.11) needs to launch Cosmos recipes the way its documentation says.

``install()`` (called by ``recipes/__init__``, which the ``nemo`` CLI loads through our ``nemo_run.cli`` entry point)
replaces nemo-run's prefixed-argument splitter and wraps three ``RunContext`` methods (written against the pinned
nemo-run 0.11.1). Each wrapper calls nemo-run's own code; launching stays nemo-run's (``run.run`` with its
``LocalExecutor``/``SlurmExecutor`` and tunnels). Why each is needed:

1. ``run.executor="cosmos_slurm(account=A,nodes=2)"``: nemo-run 0.11 reads an ``executor=`` value up to its *second*
   ``=`` (``arg.split("=")[1]``), so factory keyword arguments can never reach the factory ("Executor
   cosmos_slurm(account not found"). ``_split_prefixed`` splits at the first ``=`` only.
2. After the task is parsed (``parse_fn``), for Cosmos recipes only: the executor's sizes are matched to the
   recipe (``executors.fit_to_recipe``), the schedule follows a ``trainer.max_steps`` override, and inputs that
   cannot work are refused in one line (``model.config.latent_shape=``, a finetune without base weights, data
   prepared at another grid, LoRA settings that cannot work); a run on mock clips says so. ``peft=lora`` on the
   command line means the Cosmos LoRA (``recipes._common.peft``), as the factories' ``peft='lora'`` does.
3. ``--dryrun`` only prints the config in nemo-run 0.11; for Cosmos recipes with an executor it also prints what
   would be launched (the sbatch script, or the local torchrun command) through ``run.run(..., dryrun=True)``.
4. Without ``-y`` and without a terminal, nemo-run's ``Continue? [y/N]`` dies with "Unexpected error:"; here a
   piped answer is read, and end of input is one clear error naming ``-y``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys

import fiddle as fdl
import nemo_run as run
from nemo.collections import llm
from nemo_run.cli import api

from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.nemo_glue.lora import CosmosLoRA, check_lora
from nemo_cosmos_ar.nemo_glue.model import CosmosARModel
from nemo_cosmos_ar.nemo_glue.resume import NO_BASE_CHECKPOINT
from nemo_cosmos_ar.recipes import _common, cosmos_ar
from nemo_cosmos_ar.recipes.cosmos_ar import RecipeError, dataset_grid
from nemo_cosmos_ar.recipes.executors import fit_to_recipe

GRID_OVERRIDES = ("model.config.latent_shape", "data.latent_shape")
GRID_MESSAGE = (
    "{key} is derived from the clip size and cannot be set on the command line: pass resolution=HEIGHTxWIDTH and "
    'num_frames=N to the factory instead, e.g. --factory "cosmos_ar_4b_tealrobotsmall_tp1(resolution=384x640,'
    'num_frames=33)" (or data_path=<dataset>, whose metadata.json sets the grid)'
)
PEFT_MESSAGE = (
    "peft={value}: Cosmos AR recipes take peft=lora (LoRA adapters on the frozen model) or peft=none (train all "
    "weights)"
)
NO_PEFT_MESSAGE = (
    "{key} sets a LoRA field, but this run trains all weights: add peft='lora' to the factory, e.g. --factory "
    '"cosmos_ar_4b_tealrobotsmall_tp1(peft=lora)" (or peft=lora on the line)'
)
NO_ANSWER = "stdin is not a terminal and gave no answer to 'Continue? [y/N]': add -y (--yes) to launch without asking"


def _split_prefixed(args: list[str], prefix: str) -> tuple[str | None, list[str], list[str]]:
    """nemo-run's ``_parse_prefixed_args`` with the value split at the first ``=`` and only the leading prefix
    stripped: ``executor=f(a=1)`` -> ``f(a=1)``; ``executor.x=/a/executor.y`` -> ``x=/a/executor.y``."""
    value, prefixed, other = None, [], []
    for arg in args:
        if not arg.startswith(prefix):
            other.append(arg)
            continue
        rest = arg[len(prefix) :]
        if rest.startswith("="):
            value = rest[1:]
        elif rest.startswith("."):
            prefixed.append(rest[1:])
        elif rest.startswith("["):
            prefixed.append(rest)
        else:
            raise ValueError(f"{prefix.capitalize()} overwrites must start with '{prefix}.'. Got {arg}")
    return value, prefixed, other


def is_cosmos_task(task) -> bool:
    """A training task (``llm.finetune``/``llm.pretrain``) of a Cosmos AR model."""
    model = getattr(task, "model", None)
    training = getattr(task, "__fn_or_cls__", None) in (llm.finetune, llm.pretrain)
    return training and getattr(model, "__fn_or_cls__", None) is CosmosARModel


def _refuse_unsupported(args: list[str]) -> None:
    for arg in args:
        key, _, value = arg.partition("=")
        if key.startswith(GRID_OVERRIDES):
            raise api.RunContextError(GRID_MESSAGE.format(key=key))
        if key == "peft" and _scheme(value) not in ("lora", "none"):
            raise api.RunContextError(PEFT_MESSAGE.format(value=value))


def _scheme(value) -> str:
    v = str(value).strip().strip("'\"").lower()
    return "none" if v in ("", "none", "null") else v


def _peft_into_factory(factory: str, args: list[str]) -> tuple[str, list[str]]:
    """``peft=lora`` on the line becomes the factory's ``peft='lora'`` argument, so the recipe builds its LoRA and
    ``peft.dim=...`` overrides apply to it (nemo-run 0.11 cannot resolve ``peft=<name>``: NeMo's ``peft`` argument is
    a ``Union``). ``peft.*`` overrides on a run that trains all weights are refused in one line."""
    peft_args = [a for a in args if a.partition("=")[0] == "peft"]
    rest = [a for a in args if a.partition("=")[0] != "peft"]
    name, paren, inner = factory.partition("(")
    if peft_args:
        scheme = _scheme(peft_args[-1].partition("=")[2])
        inner = re.sub(r"(^|,)\s*peft\s*=[^,)]*", "", inner.rstrip().removesuffix(")")).lstrip(",")
        factory = f"{name}(peft={scheme}{',' if inner.strip() else ''}{inner})"
    m = re.search(r"(?:^|[(,])\s*peft\s*=\s*([^,)]*)", factory[len(name) :])
    if m:
        scheme = _scheme(m.group(1))
    else:  # the factory's default (the 24 GB recipe is LoRA by default)
        param = inspect.signature(getattr(cosmos_ar, name.strip(), None) or (lambda: None)).parameters.get("peft")
        scheme = _scheme(param.default if param is not None else None)
    key = next((a.partition("=")[0] for a in rest if a.startswith("peft.")), None)
    if key is not None and scheme == "none":
        raise api.RunContextError(NO_PEFT_MESSAGE.format(key=key))
    return factory, rest


def _check_peft(task) -> None:
    """LoRA settings that cannot work, in one line; a LoRA task gets its name and metrics (``finish_peft``)."""
    lora = getattr(task, "peft", None)
    if lora is None:
        return
    if getattr(lora, "__fn_or_cls__", None) is not CosmosLoRA:
        name = getattr(getattr(lora, "__fn_or_cls__", None), "__name__", type(lora).__name__)
        raise api.RunContextError(PEFT_MESSAGE.format(value=name))
    tp = int(task.trainer.strategy.tensor_model_parallel_size or 1)
    try:
        check_lora(lora.dim, lora.alpha, lora.dropout, lora.target_modules, tp)
        # the layer count of the recipe's model, without building its config (that would install GPU fusions here)
        cfg = get_preset(task.model.config.__fn_or_cls__.preset)
        fdl.build(lora).check_layers(dataclasses.replace(cfg, n_layers=int(task.model.config.num_layers)))
    except ValueError as e:
        raise api.RunContextError(str(e)) from None
    _common.finish_peft(task)


def _follow_max_steps(task, args: list[str]) -> None:
    """A ``trainer.max_steps=N`` override shortens the cosine too, with the recipe's warm-up rule; explicit
    ``optim.lr_scheduler.*`` overrides are left alone."""
    sched = getattr(getattr(task, "optim", None), "lr_scheduler", None)
    steps = getattr(task.trainer, "max_steps", None)
    if sched is None or not steps or steps < 0 or sched.max_steps == steps:
        return
    if any(a.startswith("optim.lr_scheduler.") for a in args):
        return
    old_steps, old_warmup = sched.max_steps, sched.warmup_steps
    sched.max_steps = steps
    if old_warmup == _common.warmup_for(old_steps):  # the recipe's rule, not a hand-picked value
        sched.warmup_steps = _common.warmup_for(steps)
    sched.warmup_steps = min(sched.warmup_steps, max(steps - 1, 0))
    _common.note(
        f"trainer.max_steps={steps}: the learning-rate schedule now warms up for {sched.warmup_steps} "
        f"steps and decays until step {steps} (was {old_warmup} of {old_steps}); set "
        "optim.lr_scheduler.warmup_steps/max_steps to choose otherwise"
    )


def _follow_parallelism(task, args: list[str]) -> None:
    """Keep the recipes' one clip per GPU when ``trainer.devices``/``num_nodes``/TP are overridden: the global batch
    becomes the new data-parallel size (unless ``data.global_batch_size`` is set on the line, then it is checked)."""
    trainer, strategy, data = task.trainer, task.trainer.strategy, task.data
    if isinstance(trainer.devices, str) and trainer.devices.isdigit():
        trainer.devices = int(trainer.devices)  # Trainer's Union[list, str, int] annotation parses "2" as a str
    split = int(strategy.tensor_model_parallel_size or 1) * int(getattr(strategy, "context_parallel_size", 1) or 1)
    world = int(trainer.devices or 1) * int(trainer.num_nodes or 1)
    if world % split:
        raise api.RunContextError(
            f"trainer.devices x trainer.num_nodes = {world} GPUs cannot be split into tensor x context parallel "
            f"groups of {split}: choose a device count that is a multiple of {split}"
        )
    step = int(data.micro_batch_size or 1) * (world // split)
    if data.global_batch_size % step == 0:
        return
    if any(a.startswith("data.global_batch_size") for a in args):
        raise api.RunContextError(
            f"data.global_batch_size={data.global_batch_size} is not a multiple of micro_batch_size x data-parallel "
            f"size = {step}: use a multiple of {step}"
        )
    _common.note(
        f"{world} GPUs at TP x CP = {split}: data.global_batch_size {data.global_batch_size} -> {step} "
        "(one clip per GPU per step)"
    )
    data.global_batch_size = step


def _check_data(task) -> None:
    data, model_grid = task.data, tuple(task.model.config.latent_shape)
    if getattr(data, "path", None) is None and getattr(data, "dataset", None) is None:
        _common.note(
            "WARNING: no data_path: this run trains on MOCK clips (random token ids), not on videos; "
            "pass data_path=<a `cosmos-ar prepare-data` folder> to the factory (or data.path=...)"
        )
        return
    found = dataset_grid(getattr(data, "path", None))
    if found is not None and found != model_grid:
        raise api.RunContextError(
            f"{data.path} holds clips of grid {'x'.join(map(str, found))} but the model is set up for "
            f"{'x'.join(map(str, model_grid))}: pass the dataset as data_path= to the factory (its grid is then "
            "used), or resolution=/num_frames= matching the data"
        )


def _check_start(task, dryrun: bool) -> None:
    resume = getattr(task, "resume", None)
    if task.__fn_or_cls__ is not llm.finetune or resume is None or getattr(resume, "allow_random_init", True):
        return
    restore = getattr(resume, "restore_config", None)
    if restore is not None and getattr(restore, "path", None):
        return
    if not dryrun:
        raise api.RunContextError(NO_BASE_CHECKPOINT)
    _common.note(f"WARNING: {NO_BASE_CHECKPOINT} (this dry run goes on; a real launch stops here)")


def check_cosmos_task(ctx, task, args: list[str]) -> None:
    """All launch-time checks and fixes for a parsed Cosmos task (see the module docstring, point 2)."""
    try:
        _check_start(task, bool(ctx.dryrun))
        _check_peft(task)
        _check_data(task)
        _follow_max_steps(task, args)
        _follow_parallelism(task, args)
        if getattr(ctx, "executor", None) is not None:
            fit_to_recipe(ctx.executor, task)
    except RecipeError as e:
        raise api.RunContextError(str(e)) from None


def _wrap_parse_fn(orig):
    def parse_fn(self, fn, args, **kwargs):
        factory = str(self.factory or "")
        cosmos_factory = factory.startswith(("cosmos_ar", "base_4b_example"))
        if cosmos_factory:
            _refuse_unsupported(list(args))
            self.factory, args = _peft_into_factory(factory, list(args))
        try:
            task = orig(self, fn, args, **kwargs)
        except RecipeError as e:
            raise api.RunContextError(str(e)) from None
        self._cosmos_task = task if is_cosmos_task(task) else None
        if self._cosmos_task is not None:
            if not cosmos_factory:
                _refuse_unsupported(list(args))
            check_cosmos_task(self, task, list(args))
        return task

    return parse_fn


def _wrap_execute_task(orig):
    def _execute_task(self, fn, task_args):
        orig(self, fn, task_args)
        task = getattr(self, "_cosmos_task", None)
        if self.dryrun and task is not None and self.executor is not None:
            print(f"Dry run of the launch on {type(self.executor).__name__} (nothing is submitted):", flush=True)
            # The last use of this executor (a dry run launches nothing), so no copy: an SSHTunnel holds a lock.
            run.run(task, executor=self.executor, name=self.name, dryrun=True)

    return _execute_task


def _wrap_should_continue(orig):
    def _should_continue(self, skip_confirmation: bool) -> bool:
        interactive = sys.stdin is not None and sys.stdin.isatty()
        if (
            skip_confirmation
            or interactive
            or api._is_torchrun()
            or api.NEMORUN_SKIP_CONFIRMATION is not None
            or getattr(self, "_cosmos_task", None) is None
        ):
            return orig(self, skip_confirmation)
        answer = sys.stdin.readline()
        if not answer:
            raise api.RunContextError(NO_ANSWER)
        api.NEMORUN_SKIP_CONFIRMATION = answer.strip().lower() in ("y", "yes")
        return api.NEMORUN_SKIP_CONFIRMATION

    return _should_continue


def install() -> None:
    """Wrap nemo-run's CLI once (idempotent)."""
    ctx = api.RunContext
    if getattr(ctx, "_cosmos_hooks", False):
        return
    api._parse_prefixed_args = _split_prefixed
    ctx.parse_fn = _wrap_parse_fn(ctx.parse_fn)
    ctx._execute_task = _wrap_execute_task(ctx._execute_task)
    ctx._should_continue = _wrap_should_continue(ctx._should_continue)
    ctx._cosmos_hooks = True
