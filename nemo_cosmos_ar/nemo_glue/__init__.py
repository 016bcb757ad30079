"""NeMo 2 glue: the only package (with ``recipes``) that imports ``nemo``.

Importing it patches nothing: entry points (the ``cosmos-ar`` CLI, the recipes package, the tests' conftest and
scripts) call ``runtime.prepare_process()`` first, which applies ``compat`` and, on a machine without CUDA, the CUDA
stand-ins of ``cpu_shim``.

It registers the checkpoint connectors on ``CosmosARModel``, explicitly and here: NeMo looks them up on the model
class, and loading a checkpoint's io.json imports ``nemo_glue.model`` (so this package) and nothing else of ours.
"""

from nemo_cosmos_ar.nemo_glue import connectors

connectors.register()
