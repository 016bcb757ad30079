"""NeMo 2 glue: the only package (with ``recipes``) that imports ``nemo``.

On a machine without CUDA, importing it applies ``cpu_shim`` (Megatron-Core / NeMo need CUDA stand-ins to run on
CPU); with CUDA it changes nothing.
"""

from nemo_cosmos_ar import compat, cpu_shim

compat.apply()

if cpu_shim.on_cpu():
    cpu_shim.apply(nemo=True)
