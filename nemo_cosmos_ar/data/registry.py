"""Named datasets, like cosmos-predict1's ``register_training_data`` (``autoregressive/configs/registry.py``;
docs/data.md).

A name fixes how a token dataset is cut and where it lives, so recipes and ``prepare-data`` can say
``tealrobot_video_small`` instead of repeating folder, resolution, frame count and strides::

    from nemo_cosmos_ar.data.registry import register_dataset
    register_dataset("kitchen", folder="/data/kitchen_tokens", resolution=(384, 640), num_frames=33,
                     window_stride=8, videos="/data/kitchen_mp4")

    cosmos-ar prepare-data --dataset kitchen            # videos, output, resolution, frames, strides from the name
    CosmosVideoDataModule(dataset="kitchen", ...)       # reads /data/kitchen_tokens

Relative folders resolve under ``$COSMOS_AR_DATA`` (default ``./datasets``). Datasets can also be registered without
Python: point ``$COSMOS_AR_DATASETS`` at a JSON file ``{"name": {"folder": ..., "resolution": [h, w], ...}, ...}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from nemo_cosmos_ar.data.windows import WindowSpec
from nemo_cosmos_ar.model.config import latent_shape_for

DATA_ROOT_ENV = "COSMOS_AR_DATA"
REGISTRY_FILE_ENV = "COSMOS_AR_DATASETS"
DEFAULT_DATA_ROOT = "datasets"


def data_root() -> str:
    """Folder that relative dataset folders are resolved against (``$COSMOS_AR_DATA``, default ``./datasets``)."""
    return os.environ.get(DATA_ROOT_ENV, DEFAULT_DATA_ROOT)


def _resolve(path: str | None) -> str | None:
    if path is None:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(data_root(), path)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Args:
        name: registry key.
        folder: the prepared token dataset (``prepare-data --output``; what training reads).
        resolution: clip (height, width) in pixels, multiples of 16.
        num_frames: frames per clip, 1 + 8k.
        window_stride: a clip starts every ``window_stride`` frames (cosmos ``start_frame_interval``).
        frame_stride: frames of a clip are ``frame_stride`` apart (cosmos ``sequence_interval``).
        videos: the source MP4 folder (``prepare-data --videos``), if known.
    """

    name: str
    folder: str
    resolution: tuple[int, int]
    num_frames: int = 33
    window_stride: int = 1
    frame_stride: int = 1
    videos: str | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolution", tuple(int(x) for x in self.resolution))
        self.windows  # noqa: B018 -- validates frames and strides
        latent_shape_for(self.num_frames, *self.resolution)  # validates 1+8k frames and multiples of 16

    @property
    def windows(self) -> WindowSpec:
        return WindowSpec(self.num_frames, self.window_stride, self.frame_stride)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return latent_shape_for(self.num_frames, *self.resolution)

    @property
    def folder_path(self) -> str:
        """``folder`` resolved against the data root."""
        return _resolve(self.folder)

    @property
    def videos_path(self) -> str | None:
        return _resolve(self.videos)

    def to_dict(self) -> dict:
        return {**asdict(self), "resolution": list(self.resolution)}


_REGISTRY: dict[str, DatasetSpec] = {}
_loaded_file: str | None = None


def register_dataset(
    name: str,
    folder: str,
    resolution: tuple[int, int],
    num_frames: int = 33,
    window_stride: int = 1,
    frame_stride: int = 1,
    videos: str | None = None,
    overwrite: bool = False,
) -> DatasetSpec:
    """Register (or with ``overwrite=True`` replace) a named dataset; returns its spec."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered ({_REGISTRY[name]}); pass overwrite=True")
    spec = DatasetSpec(name, folder, tuple(resolution), num_frames, window_stride, frame_stride, videos)
    _REGISTRY[name] = spec
    return spec


def _load_registry_file() -> None:
    """Register the datasets of ``$COSMOS_AR_DATASETS`` (once per distinct path)."""
    global _loaded_file
    path = os.environ.get(REGISTRY_FILE_ENV)
    if not path or path == _loaded_file:
        return
    try:
        with open(path) as f:
            entries = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"${REGISTRY_FILE_ENV}={path}: cannot read a dataset registry file ({e})") from e
    for name, kw in entries.items():
        try:
            register_dataset(name, overwrite=True, **kw)
        except TypeError as e:
            raise ValueError(f"${REGISTRY_FILE_ENV}={path}: entry {name!r}: {e}") from e
    _loaded_file = path


def get_dataset(name: str) -> DatasetSpec:
    _load_registry_file()
    if name not in _REGISTRY:
        raise KeyError(
            f"unknown dataset {name!r}; registered: {sorted(_REGISTRY)}. Register one with "
            f"nemo_cosmos_ar.data.registry.register_dataset() or a JSON file in ${REGISTRY_FILE_ENV}"
        )
    return _REGISTRY[name]


def list_datasets() -> list[str]:
    _load_registry_file()
    return sorted(_REGISTRY)


# cosmos-predict1 configs/base/dataloader.py get_tealrobot_video(): the NeMo-Assets teal-robot videos, every start
# frame, consecutive frames. Videos default to where cosmos-predict1's post-training example puts them.
register_dataset(
    "tealrobot_video_small",
    folder="tealrobot_video_small",
    resolution=(384, 640),
    num_frames=33,
    videos="cosmos_nemo_assets/videos",
)
register_dataset(
    "tealrobot_video",
    folder="tealrobot_video",
    resolution=(640, 848),
    num_frames=33,
    videos="cosmos_nemo_assets/videos",
)
