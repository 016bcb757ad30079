"""Checkpoint conversion between cosmos-predict1's native formats and NeMo.

``native_io`` reads and writes the native formats (released ``model.pt``, training ``iter_*.pt``, TP shards
``*_model_mp_{r}.pt``, a Hugging Face folder) with torch only, ``tp_layout`` holds cosmos-predict1's TP split rules and
``architecture`` tells which architecture a checkpoint holds and checks every tensor against it; ``nemo_reader`` reads NeMo distributed checkpoints
(weights and architecture) without NeMo; ``logits`` computes the teacher-forced parity logits of either. Writing a
NeMo checkpoint and the ``nemo llm import/export`` connectors need NeMo and live in
``nemo_cosmos_ar.nemo_glue.connectors``. See ``docs/conversion.md``.
"""
