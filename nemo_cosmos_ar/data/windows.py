"""Which frames of a video become training clips: cosmos-predict1's ``VideoDataset`` windowing (pure Python).

For a video of ``n`` frames, a window starts at every ``window_stride``-th frame (cosmos ``start_frame_interval``)
and takes ``num_frames`` frames ``frame_stride`` apart (cosmos ``sequence_interval``). Only full windows are
kept, so a window starting at ``s`` exists iff ``s + (num_frames - 1)·frame_stride <= n - 1``. With the defaults
(33 frames, both strides 1) a video gives ``n - 32`` overlapping clips, exactly like cosmos-predict1.
Clips are ordered by (video path, first frame) -- the order cosmos-predict1 sorts its sample list in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowSpec:
    """How clips are cut: ``num_frames`` frames, ``frame_stride`` apart, one window every ``window_stride`` frames."""

    num_frames: int = 33
    window_stride: int = 1
    frame_stride: int = 1

    def __post_init__(self) -> None:
        for name in ("num_frames", "window_stride", "frame_stride"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def span(self) -> int:
        """Frames of the source video one window covers, first to last inclusive."""
        return (self.num_frames - 1) * self.frame_stride + 1


def window_starts(num_video_frames: int, spec: WindowSpec) -> list[int]:
    """First frames of all full windows of a ``num_video_frames``-frame video, ascending."""
    last_start = num_video_frames - spec.span
    return list(range(0, last_start + 1, spec.window_stride)) if last_start >= 0 else []


def num_windows(num_video_frames: int, spec: WindowSpec) -> int:
    """``len(window_starts(num_video_frames, spec))`` without building the list."""
    last_start = num_video_frames - spec.span
    return last_start // spec.window_stride + 1 if last_start >= 0 else 0


def frame_indices(start: int, spec: WindowSpec) -> list[int]:
    """Source-frame indices of the window starting at ``start``: ``start, start+stride, ...`` (``num_frames`` ids)."""
    return [start + k * spec.frame_stride for k in range(spec.num_frames)]
