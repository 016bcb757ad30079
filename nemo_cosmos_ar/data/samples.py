"""A small, real-looking sample video set that needs no internet, for the demo and the tests.

Each clip moves a virtual camera (pan, tilt, zoom, orbit, with a little hand-held shake) across a real photograph
that ships inside an installed package -- scikit-learn's ``china.jpg`` and ``flower.jpg``, matplotlib's
``grace_hopper.jpg`` -- or shows a small rendered physics simulation (shaded balls bouncing under gravity on a
floor, with shadows). So the tokenizer and the model see natural image statistics and coherent motion, not noise.
If neither package is installed, all clips are simulations.

    write_sample_videos("samples/", num_videos=6, num_frames=48, height=192, width=320)
"""

from __future__ import annotations

import importlib.util
import math
import os

import torch
import torch.nn.functional as F

# (package, path inside the package) of photographs we may borrow; all are real photos, a few hundred KB each.
_PHOTOS = (
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)
MOTIONS = ("pan", "zoom", "orbit", "tilt")


def find_photos() -> list[str]:
    """Paths of the bundled photographs that are installed here (without importing their packages)."""
    found = []
    for package, rel in _PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = os.path.join(list(spec.submodule_search_locations)[0], rel)
        if os.path.isfile(path):
            found.append(path)
    return found


def load_photo(path: str) -> torch.Tensor:
    """``[1, 3, H, W]`` float in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = torch.frombuffer(bytearray(im.convert("RGB").tobytes()), dtype=torch.uint8)
        w, h = im.size
    return rgb.reshape(1, h, w, 3).permute(0, 3, 1, 2).float() / 255


def _smooth(x: torch.Tensor) -> torch.Tensor:
    return x * x * (3 - 2 * x)  # smoothstep: the camera eases in and out


def camera_path(motion: str, num_frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame camera ``(x, y, zoom)``: x, y in [-1, 1] (fraction of the free travel), zoom in (0, 1]."""
    g = torch.Generator().manual_seed(seed)
    # The move takes at least 48 frames (2 s at 24 fps), so shorter clips show its start, not a faster camera.
    t = _smooth(torch.arange(num_frames) / max(num_frames - 1, 47))
    r = torch.rand(4, generator=g)
    shake = 0.02 * torch.sin(torch.arange(num_frames) * (0.25 + 0.4 * float(r[0])))
    side = 1.0 if r[1] < 0.5 else -1.0
    if motion == "pan":
        x, y, z = side * (2 * t - 1), (r[2] - 0.5) + shake, torch.full_like(t, 0.55 + 0.2 * float(r[3]))
    elif motion == "tilt":
        x, y, z = (r[2] - 0.5) + shake, side * (2 * t - 1), torch.full_like(t, 0.5 + 0.2 * float(r[3]))
    elif motion == "zoom":
        x, y, z = (r[2] - 0.5) * t + shake, (r[3] - 0.5) * t, 1.0 - 0.55 * t
    elif motion == "orbit":
        a = 2 * math.pi * (float(r[2]) + 0.5 * t)
        x, y, z = 0.7 * torch.cos(a), 0.7 * torch.sin(a) + shake, 0.5 + 0.1 * torch.sin(2 * a)
    else:
        raise ValueError(f"unknown camera motion {motion!r}; choose one of {MOTIONS}")
    return x.clamp(-1, 1), y.clamp(-1, 1), z


def render_camera_move(
    photo: torch.Tensor, motion: str, num_frames: int, height: int, width: int, seed: int = 0
) -> torch.Tensor:
    """Frames of a camera moving over ``photo`` ``[1, 3, H0, W0]``: uint8 ``[T, H, W, 3]``."""
    h0, w0 = photo.shape[-2:]
    # Largest window of the output aspect ratio inside the photo, in grid_sample's normalised [-1, 1] units.
    if w0 / h0 >= width / height:
        sx_max, sy_max = (width / height) * h0 / w0, 1.0
    else:
        sx_max, sy_max = 1.0, (height / width) * w0 / h0
    x, y, z = camera_path(motion, num_frames, seed)
    sx, sy = z * sx_max, z * sy_max
    theta = torch.zeros(num_frames, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sx, x * (1 - sx)
    theta[:, 1, 1], theta[:, 1, 2] = sy, y * (1 - sy)
    grid = F.affine_grid(theta, [num_frames, 3, height, width], align_corners=False)
    frames = F.grid_sample(photo.expand(num_frames, -1, -1, -1), grid, mode="bicubic", align_corners=False)
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def render_bouncing_balls(
    num_frames: int, height: int, width: int, seed: int = 0, num_balls: int = 4, fps: float = 24.0
) -> torch.Tensor:
    """A little physics scene: shaded balls bouncing on a floor under gravity, with soft shadows. uint8 [T,H,W,3]."""
    g = torch.Generator().manual_seed(seed)
    floor = 0.8  # floor height as a fraction of the image, from the top
    radius = 0.08 + 0.08 * torch.rand(num_balls, generator=g)  # in units of the image height
    pos = torch.stack(
        [
            0.1 + 0.8 * torch.rand(num_balls, generator=g) * width / height,
            0.15 + 0.3 * torch.rand(num_balls, generator=g),
        ],
        1,
    )
    vel = torch.stack([(torch.rand(num_balls, generator=g) - 0.5) * 0.8, torch.zeros(num_balls)], 1)
    colour = 0.25 + 0.7 * torch.rand(num_balls, 3, generator=g)
    aspect = width / height
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, aspect, width), indexing="ij")
    sky = torch.stack([0.55 + 0.3 * yy, 0.7 + 0.2 * yy, 0.95 - 0.1 * yy])
    tiles = ((xx * 8).floor() + (yy * 8).floor()) % 2
    ground = torch.stack([0.45 + 0.1 * tiles, 0.4 + 0.08 * tiles, 0.3 + 0.05 * tiles]) * (0.6 + 0.5 * yy)
    background = torch.where(yy < floor, sky, ground)
    dt, gravity, frames = 1.0 / fps, 2.5, []
    for _ in range(num_frames):
        img = background.clone()
        for b in range(num_balls):  # shadows first, so no ball is darkened by another's shadow
            d2 = ((xx - pos[b, 0]) / (1.6 * radius[b])) ** 2 + ((yy - floor) / (0.35 * radius[b])) ** 2
            img = img * (1 - 0.45 * torch.exp(-2 * d2) * (yy >= floor))
        for b in torch.argsort(pos[:, 1]):
            dx, dy = (xx - pos[b, 0]) / radius[b], (yy - pos[b, 1]) / radius[b]
            inside = (dx * dx + dy * dy) <= 1
            nz = torch.sqrt((1 - dx * dx - dy * dy).clamp(min=0))
            light = (0.25 + 0.75 * (-0.4 * dx - 0.5 * dy + 0.75 * nz).clamp(min=0)).clamp(max=1)
            spec = torch.exp(-((dx + 0.35) ** 2 + (dy + 0.4) ** 2) * 12) * 0.6
            img = torch.where(inside, colour[b, :, None, None] * light + spec, img)
        frames.append(img)
        vel[:, 1] += gravity * dt
        pos += vel * dt
        bounce = pos[:, 1] + radius > floor
        pos[bounce, 1] = floor - radius[bounce]
        vel[bounce, 1] *= -0.85
        wall = (pos[:, 0] - radius < 0) | (pos[:, 0] + radius > aspect)
        vel[wall, 0] *= -1
        pos[:, 0] = torch.maximum(torch.minimum(pos[:, 0], aspect - radius), radius)
    video = torch.stack(frames).clamp(0, 1)
    return (video * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def write_mp4(path: str, frames: torch.Tensor, fps: float = 24.0) -> None:
    """Write uint8 ``[T, H, W, 3]`` frames as an H.264 MP4 (even H and W)."""
    from nemo_cosmos_ar import video_io

    video_io.write_video(path, frames, fps=fps)


def write_sample_videos(
    folder: str,
    num_videos: int = 6,
    num_frames: int = 48,
    height: int = 192,
    width: int = 320,
    fps: float = 24.0,
    seed: int = 0,
) -> list[str]:
    """Write ``num_videos`` sample MP4s into ``folder`` (created if needed); returns their paths, sorted.

    Clips cycle through the installed photographs, then the simulation, and through the camera motions, so
    every clip differs. The same arguments always give the same frames.
    """
    if height % 2 or width % 2:
        raise ValueError(f"H.264 needs an even frame size, got {height}x{width}")
    if num_videos < 1 or num_frames < 1:
        raise ValueError("num_videos and num_frames must be >= 1")
    os.makedirs(folder, exist_ok=True)
    sources = find_photos() + ["simulation"]
    paths = []
    for i in range(num_videos):
        source = sources[i % len(sources)]
        motion = MOTIONS[(i + i // len(sources)) % len(MOTIONS)]
        if source == "simulation":
            name = f"sample_{i:02d}_bouncing_balls.mp4"
            frames = render_bouncing_balls(num_frames, height, width, seed=seed + i, fps=fps)
        else:
            stem = os.path.splitext(os.path.basename(source))[0]
            name = f"sample_{i:02d}_{stem}_{motion}.mp4"
            frames = render_camera_move(load_photo(source), motion, num_frames, height, width, seed=seed + i)
        path = os.path.join(folder, name)
        write_mp4(path, frames, fps)
        paths.append(path)
    return sorted(paths)
