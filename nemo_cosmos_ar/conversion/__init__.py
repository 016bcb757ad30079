"""Checkpoint conversion between cosmos-predict1's native formats and NeMo.

``native_io`` reads and writes the native formats (released ``model.pt``, training ``iter_*.pt``, TP shards
``*_model_mp_{r}.pt``, a Hugging Face folder) with torch only. The NeMo side (distributed checkpoints,
``nemo llm import/export``) lives in ``nemo_cosmos_ar.nemo_glue.connectors``. See ``docs/conversion.md``.
"""
