"""NeMo importers/exporters for Cosmos-Predict1 AR: native checkpoints <-> NeMo 2 distributed checkpoints.

Registered on ``CosmosARModel`` by ``register()``, which importing the ``nemo_cosmos_ar.nemo_glue`` package calls::

    nemo llm import model=cosmos_ar_4b source=pt:///ckpts/Cosmos-Predict1-4B/model.pt output_path=ckpts/4b-nemo
    nemo llm export path=ckpts/4b-nemo target=pt output_path=out/Cosmos-Predict1-4B-Base_post-trained
    nemo llm export path=ckpts/4b-nemo target=pt_tp4 output_path=out/tp4        # model_model_mp_{0..3}.pt
    nemo llm export path=ckpts/4b-nemo target=hf output_path=out/hf             # config.json + model.safetensors
    llm.import_ckpt(CosmosARModel(CosmosARConfig4B()), "pt:///ckpts/.../model.pt", output_path=..., config="4b")

Import sources are whatever ``native_io.load_native`` reads (released ``model.pt``, ``iter_*.pt``, TP shards,
a Hugging Face folder). The architecture comes from, in order: the ``config=`` argument (preset name or
``config.json``), a cosmos ``config.json`` next to the weights, the preset whose shapes the weights have. The model
passed to ``llm.import_ckpt`` only selects this importer (NeMo hands importers the source path, not the model); when
its architecture differs from the imported one, ``on_import_ckpt`` says so.

Memory: import maps the source file and hands its tensors to the model's parameters without copies (only the fused
QKV / FC1 tensors are new), so the NeMo save streams from the page cache. Export never builds a model: it reads the
distributed checkpoint one layer at a time (torch DCP, any TP it was saved at) and streams each native tensor into
the output file. A distributed checkpoint stores TP-independent global tensors, which is why export needs no TP and
why an import at TP=1 loads at any TP.
"""

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Iterator, Optional

import nemo_run as run
import torch
from lightning.pytorch import LightningModule
from nemo.lightning import io, teardown
from nemo.lightning.ckpt_utils import ckpt_to_context_subdir
from nemo.lightning.io.pl import ckpt_to_weights_subdir
from torch import nn

from nemo_cosmos_ar import checks
from nemo_cosmos_ar.conversion import native_io
from nemo_cosmos_ar.conversion.architecture import resolve_config, same_shapes
from nemo_cosmos_ar.conversion.native_io import ConversionError
from nemo_cosmos_ar.conversion.nemo_reader import MODULE_PREFIX, NeMoCheckpointReader  # noqa: F401  (re-exported)
from nemo_cosmos_ar.conversion.tp_layout import check_tp
from nemo_cosmos_ar.conversion.verify import check_weights
from nemo_cosmos_ar.conversion.writers import check_free
from nemo_cosmos_ar.model import checkpoint_mapping as cm
from nemo_cosmos_ar.model.config import CosmosARConfig
from nemo_cosmos_ar.model.presets import get_preset
from nemo_cosmos_ar.nemo_glue.model import NEMO_CONFIGS, CosmosARModel, CosmosARNeMoConfig


def nemo_config(cfg: CosmosARConfig, dtype: torch.dtype = torch.bfloat16, **overrides) -> CosmosARNeMoConfig:
    """The NeMo config for ``cfg``: the sized class for an unmodified preset (short ``io.json``), else a full one."""
    precision = dict(params_dtype=dtype, bf16=dtype == torch.bfloat16, **overrides)
    if cfg.name in NEMO_CONFIGS and get_preset(cfg.name) == cfg:
        return NEMO_CONFIGS[cfg.name](**precision)
    return CosmosARNeMoConfig.from_cosmos(cfg, **precision)


def _run_tag() -> str:
    """A name every rank of one launch agrees on (for the shared temporary output folder)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("SLURM_JOB_ID")
    if run_id:
        return f"{run_id}-{os.environ.get('SLURM_STEP_ID', '')}"
    return str(os.getpid()) if int(os.environ.get("WORLD_SIZE", "1")) == 1 else "shared"


# ---------------------------------------------------------------------------------------------------------------
# Import: native -> NeMo
# ---------------------------------------------------------------------------------------------------------------
class CosmosARImporter(io.ModelConnector["CosmosARCheckpoint", CosmosARModel]):
    """Native Cosmos AR checkpoint (``self`` is its path) -> NeMo 2 distributed checkpoint."""

    def init(self) -> CosmosARModel:
        return CosmosARModel(self._nemo_config)

    def __call__(self, output_path: Optional[Path] = None, overwrite: bool = False, **kwargs) -> Path:
        # NeMo's Connector.__call__ deletes an existing output before converting; we replace it only at the end.
        return self.apply(Path(output_path) if output_path else self.local_path(), overwrite=overwrite, **kwargs)

    def apply(
        self,
        output_path: Path,
        overwrite: bool = False,
        config=None,
        tensor_model_parallel_size: int = 1,
        dtype: Optional[torch.dtype] = None,
        native=None,
    ) -> Path:
        """Convert into ``output_path`` (written as a temporary folder next to it, renamed at the end).

        Args:
            config: preset name, ``config.json`` path or ``CosmosARConfig``; default: see the module docstring.
            tensor_model_parallel_size: save at this TP; needs that many processes (``torchrun``). TP is a load-time
                choice for distributed checkpoints, so 1 is right unless you want to prove exactly that.
            dtype: parameter dtype of the NeMo checkpoint; default: the source's (bf16 for released files).
            native: the source already opened and checked (``load_native`` + ``verify.check_weights``), as
                ``cosmos-ar convert import`` does before it imports NeMo; default: opened and checked here.
        """
        out = Path(output_path).absolute()
        tp = checks.check_int(tensor_model_parallel_size, "tensor_model_parallel_size", 1, 1024)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if tp != world:
            raise ConversionError(
                f"importing at TP={tp} needs {tp} processes (torchrun --nproc_per_node={tp}); this launch has {world}"
            )
        ckpt = native if native is not None else native_io.load_native(Path(str(self)))
        checks.check_no_overlap(out, [("source", f) for f in ckpt.files + [ckpt.config_path]], "output")
        check_free([out], overwrite)
        checks.check_writable(out, "output")
        cfg = resolve_config(ckpt, config)
        if native is None:
            check_weights(ckpt)
        bad = [f"{k}={getattr(cfg, k)}" for k in ("n_heads", "n_kv_heads", "ffn_hidden_size") if getattr(cfg, k) % tp]
        if bad:
            raise ConversionError(f"TP={tp} does not divide {', '.join(bad)}")
        self.imported_config = cfg
        self._nemo_config = nemo_config(cfg, dtype or ckpt.dtype)
        rank = int(os.environ.get("RANK", "0"))
        tmp = out.parent / f".{out.name}.partial-{_run_tag()}"
        scratch = out.parent / f".{out.name}.fc1-scratch-{_run_tag()}"
        created = checks.topmost_missing(out.parent)  # removed again if the import fails
        out.parent.mkdir(parents=True, exist_ok=True)
        model = self.init()
        trainer = None
        try:
            trainer = self.nemo_setup(model, self._trainer(tp) if tp > 1 else None)
            _assign_parameters(model.module, ckpt.tensors, cfg, tp, tp_rank=rank % tp, scratch=scratch)
            del ckpt
            self.nemo_save(tmp, trainer)
            scratch.unlink(missing_ok=True)
            if torch.distributed.is_initialized():
                torch.distributed.barrier()
            if rank == 0:
                _replace(tmp, out)
            if torch.distributed.is_initialized():
                torch.distributed.barrier()
        except BaseException:
            scratch.unlink(missing_ok=True)
            if rank == 0:
                shutil.rmtree(tmp, ignore_errors=True)
                if created is not None:
                    shutil.rmtree(created, ignore_errors=True)
            raise
        finally:
            if trainer is not None and world > 1:
                # Keep torchrun's process group: re-creating it inside one launch desyncs the ranks' group setup.
                from megatron.core import parallel_state

                parallel_state.destroy_model_parallel()
                trainer._teardown()
            elif trainer is not None:
                teardown(trainer, model)
        print(f"Converted {cfg.name} Cosmos AR weights ({self}) to NeMo at TP={tp}: {out}")
        return out

    @staticmethod
    def _trainer(tp: int):
        from nemo import lightning as nl

        strategy = nl.MegatronStrategy(
            tensor_model_parallel_size=tp, ckpt_save_optimizer=False, always_save_context=True, ckpt_async_save=False
        )
        return nl.Trainer(devices=tp, accelerator="cpu", strategy=strategy, enable_progress_bar=False, logger=False)

    def on_import_ckpt(self, model: CosmosARModel) -> None:
        cfg = getattr(self, "imported_config", None)
        try:
            asked = model.config.cosmos_config()
        except AttributeError:  # a config NeMo could not build
            return
        if cfg is not None and not same_shapes(asked, cfg):
            print(
                f"Note: the model argument describes a {asked.name!r} model, but the checkpoint is {cfg.name!r}; "
                "it was imported as what the weights are (its io.json records that architecture)."
            )


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _iter_mcore(native: dict, cfg: CosmosARConfig, spec: str) -> Iterator[tuple[str, torch.Tensor]]:
    """``checkpoint_mapping.native_to_mcore`` one layer at a time, so fused tensors exist for one layer at once."""
    one = dataclasses.replace(cfg, n_layers=1)
    top = {k: native[k] for k in ("tok_embeddings.weight", "norm.weight", "output.weight")}
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        sub = {**top, **{"layers.0." + k[len(p) :]: v for k, v in native.items() if k.startswith(p)}}
        for k, v in cm.native_to_mcore(sub, one, spec).items():
            if k.startswith("decoder.layers.0."):
                yield f"decoder.layers.{i}." + k[len("decoder.layers.0.") :], v
            elif i == 0:
                yield k, v


def _assign_parameters(
    gpt: nn.Module, native: dict, cfg: CosmosARConfig, tp: int, tp_rank: int, scratch: Optional[Path] = None
) -> None:
    """Make the Megatron-Core model's parameters the converted tensors (views of the mapped source where possible).

    The parameter names tell which layer spec built the model (local: separate pre-norms; TE: norms fused into the
    linears). Embedding/output rows are zero-padded to Megatron's padded vocab; TP>1 takes this rank's slice.

    ``scratch``: a file to hold the fused ``linear_fc1`` weights (TP=1). Megatron's SwiGLU checkpoint factory saves
    fc1 as two ``torch.chunk`` halves, which the writer copies because they are views; keeping the fc1 parameters
    themselves in a file mapping (page cache) instead of heap memory means that copy is the only heap copy.
    """
    params = dict(gpt.named_parameters())
    spec = cm.layer_spec_of(params)
    expected = set(cm.mcore_keys(cfg, spec))
    missing, extra = sorted(set(params) - expected), sorted(expected - set(params))
    if missing or extra:
        raise ConversionError(
            f"the {spec} Megatron-Core model and the {cfg.name!r} mapping disagree: model-only "
            f"{missing[:6]}, mapping-only {extra[:6]}"
        )
    fc1 = sorted(k for k in params if k.endswith("mlp.linear_fc1.weight"))
    buf, offset = None, 0
    if scratch is not None and tp == 1 and fc1:
        buf = torch.from_file(
            str(scratch), shared=True, size=sum(params[k].numel() for k in fc1), dtype=params[fc1[0]].dtype
        )
    for name, t in _iter_mcore(native, cfg, spec):
        p = params[name]
        if name in ("embedding.word_embeddings.weight", "output_layer.weight") and t.shape[0] < p.shape[0] * tp:
            t = torch.cat([t, t.new_zeros(p.shape[0] * tp - t.shape[0], t.shape[1])])
        t = cm.mcore_tp_slice(name, t, tp, tp_rank).to(p.dtype)
        if t.shape != p.shape:
            raise ConversionError(f"{name}: converted shape {list(t.shape)} != model shape {list(p.shape)}")
        if buf is not None and name in fc1:
            t = buf[offset : offset + t.numel()].view(t.shape).copy_(t)
            offset += t.numel()
        owner = gpt.get_submodule(name.rpartition(".")[0])
        owner.register_parameter(name.rpartition(".")[2], nn.Parameter(t, requires_grad=p.requires_grad))


# ---------------------------------------------------------------------------------------------------------------
# Export: NeMo -> native
# ---------------------------------------------------------------------------------------------------------------
def _open(path: Path, base: Optional[str] = None):
    """The checkpoint's weights; a LoRA run's (adapters only) merged into its base (``nemo_glue/lora.py``)."""
    from nemo_cosmos_ar.nemo_glue.lora import open_checkpoint

    return open_checkpoint(path, base)


class _CosmosARExporter(io.ModelConnector[CosmosARModel, "CosmosARCheckpoint"]):
    """Base of the exporters; ``self`` is the NeMo checkpoint folder."""

    def init(self) -> CosmosARModel:
        return io.load_context(ckpt_to_context_subdir(Path(str(self))), subpath="model")

    @property
    def config(self) -> CosmosARConfig:
        return NeMoCheckpointReader(Path(str(self))).config

    def __call__(self, output_path: Optional[Path] = None, overwrite: bool = False, **kwargs) -> Path:
        src = Path(str(self))
        out = Path(output_path) if output_path else src.with_name(src.name + "-export")  # never inside the input
        return self.apply(out, overwrite=overwrite, **kwargs)

    def _check_output(self, output_path: Path, overwrite: bool) -> None:
        """Before anything is read or written: the output is not the checkpoint (nor in or around it), is free (or
        ``overwrite``) and can be written."""
        checks.check_no_overlap(output_path, [("checkpoint", str(self))], "output")
        check_free([Path(output_path)], overwrite)
        checks.check_writable(output_path, "output")


class CosmosARPTExporter(_CosmosARExporter):
    """NeMo -> cosmos-predict1 ``model.pt`` (tp=1) or TP shards ``model_model_mp_{r}.pt`` (tp>1)."""

    tp: int = 1

    def apply(
        self,
        output_path: Path,
        overwrite: bool = False,
        tp: Optional[int] = None,
        base: Optional[str] = None,
        dtype: torch.dtype = torch.bfloat16,
    ) -> Path:
        """``output_path`` ending in ``.pt``: the file itself (or its shards next to it); otherwise a folder with
        ``model.pt`` (or the shards) and ``config.json``. A LoRA run's checkpoint is merged into its base (``base``:
        another path for it than the recorded one)."""
        tp = checks.check_int(self.tp if tp is None else tp, "tp", 1, 1024)
        self._check_output(output_path, overwrite)
        reader = _open(Path(str(self)), base)
        check_tp(reader.config, tp)
        paths = native_io.export_native(
            output_path, reader.iter_native(), reader.config, tp=tp, overwrite=overwrite, dtype=dtype
        )
        print(
            f"Exported {self} to cosmos-predict1 {'model.pt' if tp == 1 else f'TP={tp} shards'}: "
            + ", ".join(map(str, paths))
        )
        return Path(output_path)


def _tp_exporter(tp: int) -> type:
    return type(f"CosmosARPTExporterTP{tp}", (CosmosARPTExporter,), {"tp": tp, "__doc__": f"``target=pt_tp{tp}``"})


CosmosARPTExporterTP2, CosmosARPTExporterTP4, CosmosARPTExporterTP8 = (_tp_exporter(t) for t in (2, 4, 8))


class CosmosARHFExporter(_CosmosARExporter):
    """NeMo -> Hugging Face folder: ``config.json`` (cosmos field names), ``model.safetensors``, ``README.md``."""

    def apply(
        self,
        output_path: Path,
        overwrite: bool = False,
        base: Optional[str] = None,
        dtype: torch.dtype = torch.bfloat16,
    ) -> Path:
        self._check_output(output_path, overwrite)
        reader = _open(Path(str(self)), base)
        native_io.write_hf(
            output_path, reader.iter_native(), reader.config, overwrite=overwrite, source=str(self), dtype=dtype
        )
        print(f"Exported {self} to a Hugging Face folder: {output_path}")
        return Path(output_path)

    def nemo_load(self, path, trainer=None, cpu=True):
        """NeMo's ``export_ckpt(target="hf")`` first calls this only to ask whether ModelOpt converted the model.
        Without ModelOpt state we answer with the unbuilt model (no weights loaded), so a 4B export does not load
        8 GB for nothing; this exporter itself streams the weights."""
        if (Path(ckpt_to_weights_subdir(path, is_saving=False)) / "modelopt_state").exists():
            return super().nemo_load(path, trainer, cpu)
        return io.load_context(ckpt_to_context_subdir(Path(path)), subpath="model"), None


# ---------------------------------------------------------------------------------------------------------------
# Registration on CosmosARModel (NeMo looks connectors up on the model class by source/target scheme)
# ---------------------------------------------------------------------------------------------------------------
# pt:// takes a .pt file, TP shards or a folder; hf:// a local Hugging Face folder (the same importer).
IMPORTERS = {"pt": CosmosARImporter, "hf": CosmosARImporter}
EXPORTERS = {
    "pt": CosmosARPTExporter,
    "pt_tp2": CosmosARPTExporterTP2,
    "pt_tp4": CosmosARPTExporterTP4,
    "pt_tp8": CosmosARPTExporterTP8,
    "hf": CosmosARHFExporter,
}


def register() -> None:
    """Register the importers and exporters on ``CosmosARModel`` (idempotent). ``nemo_glue/__init__.py`` calls it,
    so that loading a checkpoint's io.json (which imports ``nemo_glue.model``, hence this package) finds them."""
    for scheme, connector in IMPORTERS.items():
        io.model_importer(CosmosARModel, scheme)(connector)
    for scheme, connector in EXPORTERS.items():
        io.model_exporter(CosmosARModel, scheme)(connector)


# ---------------------------------------------------------------------------------------------------------------
# `nemo llm import model=cosmos_ar_<size>` factories
# ---------------------------------------------------------------------------------------------------------------
def _model(preset: str) -> run.Config[LightningModule]:
    return run.Config(CosmosARModel, config=run.Config(NEMO_CONFIGS[preset]))


@run.cli.factory(name="cosmos_ar_tiny")
def cosmos_ar_tiny() -> run.Config[LightningModule]:
    """The 2-layer CPU test model."""
    return _model("tiny")


@run.cli.factory(name="cosmos_ar_4b")
def cosmos_ar_4b() -> run.Config[LightningModule]:
    """Cosmos-Predict1-4B."""
    return _model("4b")


@run.cli.factory(name="cosmos_ar_12b")
def cosmos_ar_12b() -> run.Config[LightningModule]:
    """Cosmos-Predict1-12B."""
    return _model("12b")
