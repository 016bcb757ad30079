"""Video generation with a Cosmos-Predict1 base AR model: image or 9-frame video in, 33-frame video out.

Plain PyTorch, no NeMo or Megatron import (the model is ``model/reference.py``'s transformer, the tokenizer
``tokenizer/backends.py``). The tokens are decoded by cosmos-predict1's 7B diffusion decoder
(``nemo_cosmos_ar.diffusion_decoder``) or the DV8x16x16 decoder; its video guardrails run before writing
(``nemo_cosmos_ar.guardrails``).

Entry points (import them from their modules; this ``__init__`` stays empty so importing a submodule is cheap):

* ``nemo_cosmos_ar.inference.sampling``: temperature / top-k / top-p sampling with a seeded generator;
* ``nemo_cosmos_ar.inference.generator``: model loading and KV-cache autoregressive decoding of a token grid;
* ``nemo_cosmos_ar.inference.pipeline``: ``generate_video(GenerateOptions(...))``, what ``cosmos-ar generate`` runs.
"""
