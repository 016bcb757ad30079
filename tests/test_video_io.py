"""Video I/O: MP4 round trip, frame windows, resize/crop convention, image input and clear errors on bad input."""

import os

import numpy as np
import pytest
import torch

from nemo_cosmos_ar import video_io as vio

T, H, W = 17, 64, 96


def _smooth_clip(num_frames: int = T, height: int = H, width: int = W) -> torch.Tensor:
    """[T, H, W, 3] uint8 with slow gradients that move over time (H.264-friendly, every frame different)."""
    t = torch.arange(num_frames).view(-1, 1, 1, 1).float()
    y = torch.arange(height).view(1, -1, 1, 1).float()
    x = torch.arange(width).view(1, 1, -1, 1).float()
    c = torch.tensor([0.0, 2.0, 4.0]).view(1, 1, 1, 3)
    clip = 128 + 90 * torch.sin(x / 23 + t / 4 + c) * torch.cos(y / 19 - c / 3)
    return clip.round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    frames = _smooth_clip()
    path = vio.write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", frames)
    return path, frames


def test_mp4_round_trip(clip_file):
    path, frames = clip_file
    assert vio.probe(path) == (T, H, W, 25.0)
    back = vio.read_frames(path)
    assert back.shape == (T, H, W, 3) and back.dtype == torch.uint8
    err = (back.float() - frames.float()).abs()
    # Codec tolerance (crf 18, yuv420p chroma subsampling, limited-range YUV): measured mean 1.9, frame means 1.2.
    assert err.mean() < 3.0, err.mean()
    assert (back.float().mean(dim=(1, 2, 3)) - frames.float().mean(dim=(1, 2, 3))).abs().max() < 2.0
    # Frames come back in order: each decoded frame is closest to its own source frame.
    dist = (back.float()[:, None] - frames.float()[None]).abs().mean(dim=(2, 3, 4))
    assert torch.equal(dist.argmin(dim=1), torch.arange(T))


def test_write_float_model_layout_atomically(tmp_path):
    frames = _smooth_clip(9)
    model = vio.to_model_range(frames)  # [3, T, H, W] in [-1, 1]
    assert model.shape == (3, 9, H, W) and model.min() >= -1 and model.max() <= 1
    out = tmp_path / "sub" / "gen.mp4"
    vio.write_video(out, torch.zeros(5, H, W, 3, dtype=torch.uint8), fps=10)
    vio.write_video(out, model * 1.5)  # overwrites; out-of-range floats are clamped
    assert os.listdir(out.parent) == ["gen.mp4"]  # no temporary file left behind
    info = vio.probe(out)
    assert (info.num_frames, info.fps) == (9, 25.0)
    expected = torch.from_numpy(vio.to_uint8_frames(model * 1.5)).float()
    assert (vio.read_frames(out).float() - expected).abs().mean() < 3.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_to_uint8_frames_is_the_rounding_formula_and_leaves_its_input_alone(dtype):
    """``round((clamp(x, -1, 1) + 1) / 2 * 255)`` value for value, in both layouts: the values where rounding ties
    (every (k + 0.5) / 127.5 - 1), the ends, out-of-range values, -0.0 and random ones; the input is not modified."""
    g = torch.Generator().manual_seed(0)
    ties = (torch.arange(255, dtype=torch.float64) + 0.5) / 127.5 - 1
    special = torch.tensor([-1.0, 1.0, -0.0, 0.0, -3.0, 2.5, 1e-8, -1e-8], dtype=torch.float64)
    values = torch.cat([ties, special, torch.rand(3 * 5 * 8 * 10 - 263, generator=g, dtype=torch.float64) * 2.4 - 1.2])
    video = values.reshape(3, 5, 8, 10).to(dtype)  # CTHW
    before = video.clone()
    x = video.float()
    want = ((x.clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
    got = vio.to_uint8_frames(video, "CTHW")
    assert got.shape == (5, 8, 10, 3) and got.dtype == np.uint8 and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got, want)
    assert np.array_equal(vio.to_uint8_frames(video.permute(1, 2, 3, 0), "THWC"), want)
    assert torch.equal(video, before)


def test_pyav_fallback_reads_the_same_clip(clip_file, monkeypatch):
    path, frames = clip_file
    with_decord = vio.read_frames(path, num_frames=9, start=2, stride=1)

    def no_decord(*_args):
        raise ImportError("decord unavailable")

    monkeypatch.setattr(vio, "_decord_reader", no_decord)
    assert vio.probe(path) == (T, H, W, 25.0)
    with_pyav = vio.read_frames(path, num_frames=9, start=2, stride=1)
    assert with_pyav.shape == (9, H, W, 3) and with_pyav.dtype == torch.uint8
    assert (with_pyav.float() - with_decord.float()).abs().mean() < 1.0  # same stream, two YUV->RGB converters
    with pytest.raises(vio.VideoError, match="needs 33"):
        vio.read_frames(path, num_frames=33)


def test_open_video_reads_windows_bit_exact(clip_file, monkeypatch):
    # One open VideoFile read forward window by window (the decoder keeps its position) must give exactly the frames
    # that a fresh read of each window gives, with decord and with the PyAV fallback.
    path, _ = clip_file
    windows = [(0, 5), (3, 5), (8, 9), (16, 1)]  # overlapping, adjacent, and the last frame
    for fallback in (False, True):
        if fallback:
            monkeypatch.setattr(vio, "_decord_reader", lambda *_a: (_ for _ in ()).throw(ImportError("no decord")))
        with vio.VideoFile(path, threads=1) as video:
            assert video.num_frames == T
            for start, n in windows:
                got = video.read(n, start)
                assert got.shape == (n, H, W, 3)
                assert torch.equal(got, vio.read_frames(path, n, start))
            assert torch.equal(video.frames([1, 2, 15]), vio.read_frames(path)[[1, 2, 15]])
            with pytest.raises(vio.VideoError, match="needs 18"):
                video.read(2, start=16)


def test_windows(clip_file):
    path, _ = clip_file
    full = vio.read_video(path)
    assert full.shape == (3, T, H, W) and full.dtype == torch.float32
    assert torch.equal(vio.read_video(path, num_frames=9, start=-9), full[:, 8:])
    assert torch.equal(vio.read_video(path, num_frames=4, start=1, stride=4), full[:, 1:14:4])
    assert torch.equal(vio.read_video(path, stride=2, tokenizable=True), full[:, ::2])  # 9 frames
    assert vio.read_video(path, num_frames=9, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert vio.frame_indices(10, 3, start=-3) == [7, 8, 9]
    assert vio.frame_indices(10, None, start=1, stride=3) == [1, 4, 7]


def test_resize_rule_and_centre_crop_on_known_content():
    # scale = max(W_t/W, H_t/H); each side -> int(x * scale + 0.5)
    assert vio.resized_size(45, 77, 32, 32) == (32, 55)
    assert vio.resized_size(720, 1280, 640, 1024) == (640, 1138)
    assert vio.resized_size(1080, 1920, 384, 640) == (384, 683)
    assert vio.resized_size(640, 1024, 640, 1024) == (640, 1024)
    # 64x128 -> 32x64 -> centre crop 32x32 keeps source columns 32..95: make exactly those red, the rest blue.
    frame = torch.zeros(1, 64, 128, 3, dtype=torch.uint8)
    frame[..., 2] = 255
    frame[:, :, 32:96] = torch.tensor([255, 0, 0], dtype=torch.uint8)
    out = vio.resize_and_crop(frame, 32, 32)
    assert out.shape == (1, 32, 32, 3) and out.dtype == torch.uint8
    red = torch.tensor([255, 0, 0])
    assert (out[0, :, 2:30].int() - red).abs().max() <= 1  # interior: pure red
    assert out[0, :, 0, 2].min() > 10 and out[0, :, 31, 2].min() > 10  # edges blend with the blue outside the crop
    # Constant frames stay exactly constant; unchanged sizes are not resampled.
    flat = torch.full((2, 50, 70, 3), 200, dtype=torch.uint8)
    assert torch.equal(vio.resize_and_crop(flat, 16, 32), torch.full((2, 16, 32, 3), 200, dtype=torch.uint8))
    clip = _smooth_clip(2)
    assert torch.equal(vio.resize_and_crop(clip, H, W), clip)
    # Crop offset of a non-resized axis follows round((size - target) / 2).
    ramp = torch.arange(W, dtype=torch.uint8).view(1, 1, W, 1).expand(1, H, W, 3).contiguous()
    assert vio.resize_and_crop(ramp, H, 90)[0, 0, 0, 0] == 3


@pytest.mark.parametrize("margin, offset", [(1, 0), (3, 2), (5, 2), (7, 4)])
def test_centre_crop_of_odd_margins_rounds_half_to_even(margin, offset):
    """cosmos-predict1 crops with torchvision's ``CenterCrop``, whose offset is ``int(round(margin / 2.0))``:
    Python rounds halves to even, so margins 1, 3, 5, 7 start at 0, 2, 2, 4 (not floor's 0, 1, 2, 3 nor
    half-up's 1, 2, 3, 4). Written out, not computed, so a changed rounding rule fails here."""
    cols = torch.arange(W, dtype=torch.uint8).view(1, 1, W, 1).expand(1, H, W, 3).contiguous()
    out = vio.resize_and_crop(cols, H, W - margin)  # scale 1 on both axes: no resize, only the crop
    assert out.shape == (1, H, W - margin, 3)
    assert torch.equal(out[0, 0, :, 0], torch.arange(offset, offset + W - margin, dtype=torch.uint8))
    rows = torch.arange(H, dtype=torch.uint8).view(1, H, 1, 1).expand(1, H, W, 3).contiguous()
    out = vio.resize_and_crop(rows, H - margin, W)
    assert torch.equal(out[0, :, 0, 0], torch.arange(offset, offset + H - margin, dtype=torch.uint8))


def test_scale_to_model_range():
    px = torch.tensor([0, 128, 255, 64], dtype=torch.uint8).view(1, 1, 4, 1).expand(2, 1, 4, 3)  # [T, H, W, 3]
    model = vio.to_model_range(px)
    assert model.shape == (3, 2, 1, 4)
    assert torch.allclose(model[0, 0, 0, :3], torch.tensor([-1.0, 128 / 255 * 2 - 1, 1.0]), atol=1e-6)
    assert np.array_equal(vio.to_uint8_frames(model), px.numpy())
    assert np.array_equal(vio.to_uint8_frames(model.permute(1, 2, 3, 0)), px.numpy())
    with pytest.raises(ValueError, match="ambiguous"):
        vio.to_uint8_frames(torch.zeros(3, 2, 2, 3))
    assert vio.to_uint8_frames(torch.zeros(3, 2, 2, 3), layout="CTHW").shape == (2, 2, 3, 3)


def test_image_as_one_frame_clip(tmp_path):
    from PIL import Image

    frame = _smooth_clip(1, 48, 80)[0]
    Image.fromarray(frame.numpy()).save(tmp_path / "img.png")
    img = vio.read_image(tmp_path / "img.png")
    assert img.shape == (3, 1, 48, 80)
    assert torch.equal(img, vio.to_model_range(frame[None]))
    small = vio.read_image(tmp_path / "img.png", size=(32, 32))
    assert torch.equal(small, vio.to_model_range(vio.resize_and_crop(frame[None], 32, 32)))


def test_pad_frames():
    clip = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).view(2, 3, 1, 1)
    padded = vio.pad_frames(clip, 5)
    assert padded.shape == (2, 5, 1, 1)
    assert padded[:, 3:].eq(clip[:, 2:3]).all() and torch.equal(padded[:, :3], clip)


def test_bad_inputs_give_clear_errors(clip_file, tmp_path):
    path, _ = clip_file
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    with pytest.raises(vio.VideoError, match="notes.mp4: cannot decode as a video"):
        vio.read_video(not_video)
    with pytest.raises(vio.VideoError, match="cannot decode"):
        vio.probe(not_video)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(vio.VideoError, match="truncated.mp4: cannot decode.*truncated download"):
        vio.read_video(truncated)
    with pytest.raises(vio.VideoError, match=r"clip.mp4 has 17 frames but the window .* needs 33"):
        vio.read_video(path, num_frames=33)
    with pytest.raises(vio.VideoError, match=r"16 frames cannot be tokenized.*1 \+ 8k.*Ask for 9 or 17"):
        vio.read_video(path, num_frames=16, tokenizable=True)
    with pytest.raises(vio.VideoError, match="6 frames cannot be tokenized"):
        vio.read_video(path, start=-6, tokenizable=True)
    with pytest.raises(vio.VideoError, match="not a readable image"):
        vio.read_image(not_video)
    with pytest.raises(FileNotFoundError):
        vio.read_video(tmp_path / "missing.mp4")
    with pytest.raises(vio.VideoError, match="even frame sizes"):
        vio.write_video(tmp_path / "odd.mp4", torch.zeros(3, 15, 16, 3, dtype=torch.uint8))
    assert not (tmp_path / "odd.mp4").exists()
