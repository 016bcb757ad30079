"""The Cosmos-Tokenize1-DV8x16x16 discrete video tokenizer: an eager PyTorch re-implementation and a TorchScript
backend behind one interface.

Entry points (import them from their modules; this ``__init__`` stays empty so importing a submodule is cheap):

* ``nemo_cosmos_ar.tokenizer.backends.load_tokenizer(folder, backend="eager"|"jit", device, dtype)``
* ``nemo_cosmos_ar.tokenizer.fixtures.write_random_tokenizer(folder, preset="tiny", seed=0)``
* ``nemo_cosmos_ar.tokenizer.fsq`` for the FSQ code <-> index maths.
"""
