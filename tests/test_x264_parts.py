"""The MP4 write's side-by-side x264 encoders (``nemo_cosmos_ar/x264.py``): how a clip is cut into runs, and that a
clip encoded in runs decodes to as many frames, in order, at the same rate and quality as one encoded whole, with a
key frame where each run starts; encoders whose stream headers would differ fall back to one encode."""

import io

import av
import numpy as np
import pytest
import torch

from nemo_cosmos_ar import video_io as vio
from nemo_cosmos_ar import x264


@pytest.mark.parametrize(
    "frames, parts, starts",
    [
        (33, None, [0, 17]),  # generate's 33 frames: two runs, 17 + 16
        (32, None, [0, 16]),
        (31, None, [0]),  # under two runs of PART_FRAMES: whole
        (9, None, [0]),
        (1, None, [0]),
        (100, None, [0, 50]),  # at most MAX_PARTS
        (33, 3, [0, 11, 22]),
        (10, 4, [0, 3, 6, 8]),
        (3, 5, [0, 1, 2]),  # never an empty run
        (33, 1, [0]),
    ],
)
def test_encode_parts(frames, parts, starts):
    assert x264.encode_parts(frames, parts) == starts


def _clip(n: int = 33, h: int = 64, w: int = 96) -> torch.Tensor:
    """Moving gradients plus a little fixed-seed noise: every frame different, texture for the encoder."""
    t, y, x = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
    base = torch.stack([(x * 2 + 5 * t) % 256, (y * 3 + 2 * t) % 256, (x + y + 7 * t) % 256], -1).float()
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(0)) * 6
    return (base + noise).round().clamp(0, 255).to(torch.uint8)


def _decode(data: bytes) -> tuple[np.ndarray, list[int], list[int], float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames, keys, pts = [], [], []
        for f in container.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            keys.append(f.key_frame)
            pts.append(f.pts)
        return np.stack(frames), [i for i, k in enumerate(keys) if k], pts, float(stream.average_rate)


def _psnr(a: np.ndarray, b: torch.Tensor) -> float:
    return float(10 * np.log10(255**2 / ((a.astype(np.float64) - b.numpy()) ** 2).mean()))


@pytest.mark.parametrize("parts", [2, 3])
def test_runs_decode_like_a_whole_encode_with_key_frames_where_runs_start(parts):
    clip = _clip()
    whole, whole_keys, whole_pts, rate = _decode(vio.encode_mp4(clip, 25.0, layout="THWC", parts=1))
    cut, keys, pts, cut_rate = _decode(vio.encode_mp4(clip, 25.0, layout="THWC", parts=parts))
    assert cut.shape == whole.shape == (33, 64, 96, 3) and cut_rate == rate == 25.0
    assert whole_keys == [0] and keys == x264.encode_parts(33, parts)
    assert pts == whole_pts and all(b > a for a, b in zip(pts, pts[1:]))  # every frame at its own time, in order
    # the same crf, so the same quality (measured here: 28.5 dB each, within 0.012 dB; the added noise costs most)
    assert abs(_psnr(cut, clip) - _psnr(whole, clip)) < 0.2 and _psnr(cut, clip) > 27
    dist = np.abs(cut[:, None].astype(np.float32) - clip.numpy()[None]).mean(axis=(2, 3, 4))
    assert np.array_equal(dist.argmin(axis=1), np.arange(33))  # each decoded frame is its own source frame


def test_generate_clips_are_written_in_two_runs_and_read_back_by_decord(tmp_path):
    clip = _clip()
    path = vio.write_video(tmp_path / "out.mp4", clip, fps=25.0, layout="THWC")
    assert vio.probe(path) == (33, 64, 96, 25.0)
    back = vio.read_frames(path)
    assert back.shape == (33, 64, 96, 3)
    assert _decode(path.read_bytes())[1] == [0, 17]
    whole = torch.from_numpy(_decode(vio.encode_mp4(clip, 25.0, layout="THWC", parts=1))[0])
    err, whole_err = ((x.float() - clip.float()).abs().mean().item() for x in (back, whole))
    assert abs(err - whole_err) < 0.1 and err < 7.0, (err, whole_err)  # measured 5.66 against the whole encode's 5.68


def test_encoders_whose_headers_differ_fall_back_to_one_encode(monkeypatch):
    """A twin set up differently (here a crf of 30: another PPS) cannot share the stream's header: the clip is
    encoded whole, with one key frame, as ``parts=1`` writes it."""
    real = x264.x264_like
    monkeypatch.setattr(x264, "x264_like", lambda main, rate, options: real(main, rate, {"crf": "30"}))
    frames, keys, _, _ = _decode(vio.encode_mp4(_clip(), 25.0, layout="THWC", parts=2))
    assert frames.shape[0] == 33 and keys == [0]
