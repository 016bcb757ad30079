"""Video and image I/O for the tokenizer: read MP4 windows, resize + centre-crop, scale to [-1, 1], write MP4.

Conventions (cosmos-predict1 ``autoregressive/datasets/video_dataset.py`` ``VideoDataset`` and its augmentors):

* Decoding uses decord (``VideoReader(ctx=cpu(0))``), falling back to PyAV when decord is missing or fails.
* A window is ``num_frames`` frames starting at ``start`` (negative: counted from the end, so ``start=-9`` takes the
  last 9 frames as the inference loader does) with ``stride`` between them.
* Resize keeps the aspect ratio so that the frame covers the target: ``scale = max(W_t / W, H_t / H)``, new size
  ``int(x · scale + 0.5)``, bicubic with antialiasing on uint8 frames (computed in float32, then rounded and clamped
  back to uint8, as torchvision does); then a centre crop to ``H_t × W_t`` with torchvision's offsets
  ``round((H - H_t) / 2)``, ``round((W - W_t) / 2)``.
* Pixels are scaled as ``(x / 255 - 0.5) / 0.5`` in float32, then cast to the requested dtype. Model-side layout is
  ``[C, T, H, W]`` in [-1, 1]; file-side layout is ``[T, H, W, 3]`` uint8 RGB.
* Writing is H.264 (libx264, yuv420p) in MP4 at 25 fps by default, through a temporary file that is renamed into
  place, so a reader never sees a half-written video.

Every problem with the *content* of an input raises ``VideoError`` (a ``ValueError``) naming the file and what to do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from nemo_cosmos_ar import x264
from nemo_cosmos_ar.tokenizer import grid

DEFAULT_FPS = 25.0
# Frames resized per interpolate call: bounds the float32 copy of a long high-resolution window.
_RESIZE_CHUNK = 16


class VideoError(ValueError):
    """A video or image file that cannot be used as asked (unreadable, truncated, too short, wrong length)."""


class VideoInfo(NamedTuple):
    """What ``probe`` reports about a video file."""

    num_frames: int
    height: int
    width: int
    fps: float


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")


def _decord_reader(path: Path, threads: int = 2):
    import decord  # imported lazily: optional dependency, and slow to import

    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)


def _decode_error(path: Path, err: BaseException) -> VideoError:
    return VideoError(
        f"{path}: cannot decode as a video ({err.__class__.__name__}: {str(err).strip()[:200]}). Check that it is a "
        "complete video file (a truncated download or copy loses the MP4 index); use read_image() for images"
    )


def probe(path: str | Path) -> VideoInfo:
    """Frame count, size and frame rate of a video without decoding it all.

    Raises:
        FileNotFoundError: no such file.
        VideoError: not a decodable video.
    """
    path = Path(path)
    _check_exists(path)
    try:
        vr = _decord_reader(path)
        height, width = vr[0].shape[:2]
        return VideoInfo(len(vr), int(height), int(width), float(vr.get_avg_fps()))
    except Exception:  # decord missing or unable to read: PyAV decides whether the file is bad
        pass
    return _probe_pyav(path)


def _probe_pyav(path: Path) -> VideoInfo:
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for p in container.demux(stream) if p.size)
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            return VideoInfo(int(count), stream.codec_context.height, stream.codec_context.width, fps)
    except Exception as err:
        raise _decode_error(path, err) from err


def frame_indices(num_available: int, num_frames: int | None = None, start: int = 0, stride: int = 1) -> list[int]:
    """Indices of a window of frames.

    Args:
        num_available: frames in the video.
        num_frames: frames wanted; None takes every ``stride``-th frame from ``start`` to the end.
        start: first frame; negative counts from the end (``-1`` is the last frame).
        stride: step between taken frames (>= 1).

    Raises:
        ValueError: the window does not fit (``read_video`` turns this into a ``VideoError`` naming the file).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    first = start + num_available if start < 0 else start
    if not 0 <= first < num_available:
        raise ValueError(f"start={start} is outside a video of {num_available} frames")
    if num_frames is None:
        num_frames = (num_available - 1 - first) // stride + 1
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    last = first + (num_frames - 1) * stride
    if last >= num_available:
        raise ValueError(
            f"has {num_available} frames but the window start={start}, stride={stride}, num_frames={num_frames} "
            f"needs {last + 1}; ask for fewer frames, a smaller stride or an earlier start, or pad with pad_frames()"
        )
    return list(range(first, last + 1, stride))


def _read_with_pyav(path: Path, indices: Sequence[int] | None) -> tuple[np.ndarray, int]:
    import av

    wanted = None if indices is None else set(indices)
    stop = None if indices is None else max(indices)
    kept: dict[int, np.ndarray] = {}
    count = 0
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            count = i + 1
            if wanted is None or i in wanted:
                kept[i] = frame.to_ndarray(format="rgb24")
            if stop is not None and i >= stop:
                break
    order = range(count) if indices is None else indices
    missing = [i for i in order if i not in kept]
    if missing:
        raise VideoError(f"{path}: only {count} frames could be decoded but frame {missing[0]} was asked for")
    return np.stack([kept[i] for i in order]), count


class VideoFile:
    """An open video from which many windows are read, in increasing frame order for speed.

    decord keeps its decoder's position between reads, so windows read in order decode each frame once. Opening the
    file again for every window (what ``read_frames`` does) re-decodes from the previous keyframe each time, which
    for the long GOPs of ordinary H.264 (x264 puts a keyframe every 250 frames) means decoding the start of the
    video over and over: 2-3x the work for non-overlapping windows, and quadratic for windows one frame apart.
    Without decord (or when decord cannot open the file) each read decodes with PyAV from the start.

    Args:
        path: video file.
        threads: decoder threads (FFmpeg frame threading; 0 lets FFmpeg choose).

    Raises:
        FileNotFoundError: no such file.
        VideoError: not a decodable video.
    """

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        self.path = Path(path)
        _check_exists(self.path)
        self._vr, decord_error = None, None
        try:
            self._vr = _decord_reader(self.path, threads)
            self.num_frames = len(self._vr)
        except Exception as err:
            self._vr, decord_error = None, err
        if self._vr is None:
            try:
                self.num_frames = _probe_pyav(self.path).num_frames
            except VideoError as err:
                raise _decode_error(self.path, decord_error or err) from err

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._vr = None

    def read(self, num_frames: int | None = None, start: int = 0, stride: int = 1) -> torch.Tensor:
        """A window (see ``frame_indices``) as ``[T, H, W, 3]`` uint8 RGB."""
        try:
            ids = frame_indices(self.num_frames, num_frames, start, stride)
        except ValueError as err:
            raise VideoError(f"{self.path} {err}") from None
        return self.frames(ids)

    def frames(self, ids: Sequence[int]) -> torch.Tensor:
        """Frames ``ids`` (each in range) as ``[len(ids), H, W, 3]`` uint8 RGB."""
        if self._vr is not None:
            try:
                return torch.from_numpy(self._vr.get_batch(list(ids)).asnumpy())
            except Exception as err:  # container index promises frames the stream cannot deliver
                raise _decode_error(self.path, err) from err
        try:
            frames, _ = _read_with_pyav(self.path, ids)
        except VideoError:
            raise
        except Exception as err:
            raise _decode_error(self.path, err) from err
        return torch.from_numpy(frames)


def read_frames(path: str | Path, num_frames: int | None = None, start: int = 0, stride: int = 1) -> torch.Tensor:
    """Decode a window of frames as they are stored (one window; for many windows of a file use ``VideoFile``).

    Args:
        path: video file (anything FFmpeg reads; MP4 in practice).
        num_frames, start, stride: the window, see ``frame_indices``.

    Returns:
        ``[T, H, W, 3]`` uint8 RGB.

    Raises:
        FileNotFoundError: no such file.
        VideoError: unreadable or truncated file, or fewer frames than the window needs.
    """
    with VideoFile(path) as video:
        return video.read(num_frames, start, stride)


def resized_size(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int]:
    """Size after the aspect-preserving resize that covers ``target_height × target_width`` (before the crop)."""
    scale = max(target_width / width, target_height / height)
    return int(scale * height + 0.5), int(scale * width + 0.5)


def resize_and_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize the smaller side aspect-preserving (bicubic, antialiased), then centre-crop.

    Args:
        frames: ``[T, H, W, 3]`` uint8 RGB.
        height: target height.
        width: target width.

    Returns:
        ``[T, height, width, 3]`` uint8 RGB.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"expected frames [T, H, W, 3] uint8, got {tuple(frames.shape)} {frames.dtype}")
    h, w = frames.shape[1:3]
    new_h, new_w = resized_size(h, w, height, width)
    if (new_h, new_w) != (h, w):
        chunks = []
        for chunk in frames.split(_RESIZE_CHUNK):
            x = chunk.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
            chunks.append(x.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1))
        frames = torch.cat(chunks)
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    return frames[:, top : top + height, left : left + width].contiguous()


def to_model_range(frames: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[T, H, W, 3]`` uint8 -> ``[3, T, H, W]`` in [-1, 1] (scaled in float32, then cast to ``dtype``)."""
    x = frames.permute(3, 0, 1, 2).float().div(255.0)
    return x.sub_(0.5).div_(0.5).to(dtype)


def check_tokenizable(num_frames: int, path: str | Path | None = None) -> None:
    """Raise ``VideoError`` unless ``num_frames`` is 1 + 8k (1, 9, 17, 25, 33, ...), the causal tokenizer's rule."""
    if not grid.is_tokenizable(num_frames):
        lower, upper = grid.neighbouring_frame_counts(num_frames)
        where = f"{path}: " if path is not None else ""
        raise VideoError(
            f"{where}a clip of {num_frames} frames cannot be tokenized: the causal tokenizer needs 1 + 8k frames "
            f"(1, 9, 17, 25, 33, ...). Ask for {lower} or {upper} frames, or pad with "
            "pad_frames()"
        )


def read_video(
    path: str | Path,
    *,
    num_frames: int | None = None,
    start: int = 0,
    stride: int = 1,
    size: tuple[int, int] | None = None,
    tokenizable: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Read a window of a video as a model-ready clip.

    Args:
        path: video file.
        num_frames: frames to take (None: every ``stride``-th frame from ``start`` to the end).
        start: first frame; negative counts from the end (``start=-9, num_frames=9`` = the last 9 frames).
        stride: step between frames.
        size: ``(height, width)`` to resize and centre-crop to; None keeps the stored size.
        tokenizable: require 1 + 8k frames (what the tokenizer accepts).
        dtype: output dtype.

    Returns:
        ``[3, T, H, W]`` in [-1, 1].

    Raises:
        FileNotFoundError: no such file.
        VideoError: unreadable/truncated file, too few frames for the window, or (with ``tokenizable``) a frame
            count that is not 1 + 8k.
    """
    if tokenizable and num_frames is not None:
        check_tokenizable(num_frames, path)  # fail before decoding anything
    frames = read_frames(path, num_frames, start, stride)
    if tokenizable:
        check_tokenizable(frames.shape[0], path)
    if size is not None:
        frames = resize_and_crop(frames, *size)
    return to_model_range(frames, dtype)


def read_image(
    path: str | Path, *, size: tuple[int, int] | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Read an image as a one-frame clip ``[3, 1, H, W]`` in [-1, 1] (same resize/crop as ``read_video``).

    Raises:
        FileNotFoundError: no such file.
        VideoError: not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_exists(path)
    try:
        with Image.open(path) as img:
            frame = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise VideoError(f"{path}: not a readable image ({err}); use read_video() for videos") from err
    frames = torch.from_numpy(frame.copy()).unsqueeze(0)
    if size is not None:
        frames = resize_and_crop(frames, *size)
    return to_model_range(frames, dtype)


def pad_frames(video: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Repeat the last frame of a ``[C, T, H, W]`` clip until it has ``num_frames`` frames (as cosmos-predict1's
    inference loader pads a 1- or 9-frame prompt to 33). Longer clips are returned unchanged."""
    missing = num_frames - video.shape[1]
    if missing <= 0:
        return video
    return torch.cat([video, video[:, -1:].expand(-1, missing, -1, -1)], dim=1)


def to_uint8_frames(video: torch.Tensor, layout: str | None = None) -> np.ndarray:
    """Convert a clip to file layout ``[T, H, W, 3]`` uint8.

    Args:
        video: uint8 ``[T, H, W, 3]``, or float in [-1, 1] as ``[T, H, W, 3]`` (``"THWC"``) or model layout
            ``[3, T, H, W]`` (``"CTHW"``). Floats are clamped to [-1, 1] and rounded: ``round((x + 1) / 2 · 255)``.
        layout: ``"THWC"`` or ``"CTHW"``; None infers it from which end has size 3 and refuses to guess when both do.
    """
    if video.ndim != 4:
        raise ValueError(f"expected a 4-D clip, got shape {tuple(video.shape)}")
    if layout is None:
        first, last = video.shape[0] == 3, video.shape[-1] == 3
        if first and last and video.dtype != torch.uint8:
            raise ValueError(f"clip shape {tuple(video.shape)} is ambiguous; pass layout='THWC' or 'CTHW'")
        layout = "THWC" if last else "CTHW"
    if layout not in ("THWC", "CTHW"):
        raise ValueError(f"layout must be 'THWC' or 'CTHW', got {layout!r}")
    if layout == "CTHW":
        video = video.permute(1, 2, 3, 0)
    if video.shape[-1] != 3:
        raise ValueError(f"expected 3 colour channels, got a clip of shape {tuple(video.shape)} ({layout})")
    if video.dtype == torch.uint8:
        return video.cpu().contiguous().numpy()
    if not video.is_floating_point():
        raise ValueError(f"expected uint8 or float video, got {video.dtype}")
    # the same four float ops as round((x + 1) / 2 * 255), in place on clamp's fresh tensor: 0.42 -> 0.17 s for a
    # 33-frame 640x1024 clip on the 2-core CPU machine (bit-equal; tests/test_video_io.py). On a GPU tensor they
    # run there, and only the uint8 frames cross to the host.
    x = video.detach().float().clamp(-1, 1)
    x.add_(1).div_(2).mul_(255).round_()
    return x.to(torch.uint8).contiguous().cpu().numpy()


def encode_mp4(
    video: torch.Tensor,
    fps: float = DEFAULT_FPS,
    *,
    crf: int = 18,
    layout: str | None = None,
    name: str = "video",
    parts: int | None = None,
) -> bytes:
    """A clip as H.264 MP4 bytes, in memory: what ``write_video`` writes. The same frames decode to the same frames,
    but the bytes can differ between encodes: x264's frame threads (its default) are not repeatable byte for byte
    (BENCHMARKS.md, issue 13, thirteenth session). ``name`` labels the errors (``write_video`` passes the path).

    Args:
        video: see ``to_uint8_frames`` (uint8 ``[T, H, W, 3]`` or float in [-1, 1]). H and W must be even
            (yuv420p chroma subsampling).
        fps: frame rate (cosmos-predict1 writes 25).
        crf: x264 constant rate factor (lower = better; 18 is visually lossless for most content).
        layout: see ``to_uint8_frames``.
        parts: x264 encoders run side by side on consecutive runs of frames (``x264.encode_parts``); each run after
            the first starts with a key frame. None: one per ``x264.PART_FRAMES`` frames, at most ``x264.MAX_PARTS``.
    """
    import io

    import av

    frames = to_uint8_frames(video, layout)
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise VideoError(f"{name}: H.264 (yuv420p) needs even frame sizes, got {height}x{width}; crop or pad first")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    starts = x264.encode_parts(len(frames), parts)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        options = {"crf": str(crf)}
        stream.options = dict(options)
        packets = None
        if len(starts) > 1:
            packets = x264.encode_side_by_side(stream.codec_context, frames, starts, rate, options)
        if packets is None:
            starts, packets = [0], [x264.encode_run(stream.codec_context, frames)]
        for first, run in zip(starts, packets):
            for packet in run:
                if first:  # each encoder counts frames from 0, and one tick of the time base is one frame
                    packet.pts += first
                    packet.dts += first
                packet.stream = stream
                container.mux(packet)
    return buf.getvalue()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``data`` to ``path`` atomically (a temporary file in the same folder, then a rename); parent folders are
    created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_video(
    path: str | Path, video: torch.Tensor, fps: float = DEFAULT_FPS, *, crf: int = 18, layout: str | None = None
) -> Path:
    """Write a clip as H.264 MP4 (``encode_mp4``), atomically (``write_bytes``): a reader never sees half a video.

    Returns:
        ``path``.
    """
    return write_bytes(path, encode_mp4(video, fps, crf=crf, layout=layout, name=str(path)))
