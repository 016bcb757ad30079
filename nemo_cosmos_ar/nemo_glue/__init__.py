"""NeMo 2 glue: the only package (with ``recipes``) that imports ``nemo``. Importing ``nemo_cosmos_ar.nemo_glue.model``
registers nothing by itself; ``nemo_cosmos_ar.nemo_glue.connectors`` registers the ``pt`` importer/exporter."""
