"""nemo_cosmos_ar: post-train, convert and run NVIDIA Cosmos-Predict1 autoregressive video world models with
Megatron-Core / NeMo 2.

The package root stays import-light on purpose: the Cosmos core (config, 3D RoPE, key mapping, tokenizer, token
layout, sampling) must import without NeMo, so nothing here pulls in torch or NeMo.
"""

__version__ = "0.1.0"
