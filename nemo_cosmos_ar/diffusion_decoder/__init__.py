"""The 7B diffusion decoder of cosmos-predict1 (Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p): DV8x16x16
token grid -> Cosmos-Tokenize1-CV8x8x8 latents (a DiT sampled with EDM Euler + classifier-free guidance) -> frames.

Entry points (import them from their modules; this ``__init__`` stays empty so importing a submodule is cheap):

* ``pipeline.DiffusionDecoder(checkpoint_dir, tokenizer_dir, ...)`` and its ``decode_tokens(tokens, seed=...)``;
  ``pipeline.decode_tokens(...)`` is the one-call form;
* ``fixtures.write_random_decoder(folder, "tiny")`` / ``fixtures.write_random_cv_tokenizer(folder, "tiny")`` for
  random-weight folders in the released formats;
* ``config`` (``DiTConfig`` presets ``"7b"``/``"tiny"``, ``SamplerConfig`` with NVIDIA's defaults), ``network``
  (the DiT), ``sampler`` (schedule, guidance, chunking, blending), ``checkpoint`` (``model.pt``/``aux_vars.pt``),
  ``cv8x8x8`` (the continuous tokenizer's decoder, TorchScript or eager).
"""
