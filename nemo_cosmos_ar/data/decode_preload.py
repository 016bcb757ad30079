"""Imported by the decode processes' fork server (``pipeline._context``): the video readers a decode process uses,
loaded once so that each forked decode process starts with them. decord and PyAV are optional and load native
libraries (a broken one raises OSError, not ImportError, which would stop the fork server): any failure here only
means the decode process imports them itself, and reports the error then, as it always did."""

import importlib

from nemo_cosmos_ar import video_io  # noqa: F401 -- preloaded, with torch

for _name in ("decord", "av"):
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001 -- see the module docstring
        continue
