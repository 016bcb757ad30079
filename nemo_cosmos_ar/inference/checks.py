"""Input validation for ``cosmos-ar generate``, run before anything expensive: every problem is one clear line
(a ``ValueError``/``FileNotFoundError``/``FileExistsError`` the CLI prints), nothing is written, no input is touched.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import torch

# Every decoded grid is at most this large in H' and W' unless the model's own grid is larger: the 4B/12B were
# pre-trained on 40 x 64 latent tokens per frame (640x1024), and NVIDIA's inference fixes that resolution.
PRETRAIN_GRID_HW = (40, 64)


def check_device(device: str | None) -> torch.device:
    """``device`` (None: CUDA when present) as a ``torch.device`` that exists on this machine."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device!r} is not a device this command runs on; use cuda, cuda:N or cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {device}: CUDA is not available on this machine (torch "
                f"{torch.__version__}); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    return dev


def missing_package(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return True
    return False


def check_dependencies(reads_video: bool) -> None:
    """MP4 output needs PyAV; video input needs PyAV or decord. Named as a missing package, before any work."""
    if missing_package("av"):
        need = "reading the input video and writing" if reads_video else "writing"
        raise ValueError(
            f"{need} the MP4 output needs the Python package PyAV (module 'av'), which is not installed: pip install av"
        )


def _resolved(p: Path) -> Path:
    return Path(os.path.abspath(p)).resolve()


def same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return _resolved(a) == _resolved(b)


def inside(child: Path, parent: Path) -> bool:
    c, p = _resolved(child), _resolved(parent)
    return c == p or p in c.parents


def check_output(path: Path, flag: str, overwrite: bool, suffix: str | None = None) -> None:
    """``path`` can be written: not a folder, free (or ``overwrite``), and its nearest existing parent a writable
    folder. Checked before generating so a read-only folder fails in a second, not after minutes."""
    if suffix is not None and path.suffix.lower() != suffix:
        raise ValueError(f"{flag} {path} must end in {suffix}")
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file name ending in {suffix or 'a file suffix'}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it or choose another path")
    parent = _resolved(path).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
    try:  # a real probe: os.access says yes to root on read-only mounts and pseudo file systems
        fd, probe = tempfile.mkstemp(prefix=".cosmos-ar-write-test-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError:
        raise ValueError(f"{flag} {path}: the folder {parent} is not writable; choose another output path") from None


def check_not_an_input(path: Path, flag: str, inputs: dict[str, Path | None]) -> None:
    """Refuse an output that is, or lies inside, an input (generate never writes over what it reads)."""
    for what, src in inputs.items():
        if src is None:
            continue
        if same_file(path, src) or (src.is_dir() and inside(path, src)):
            where = "is" if same_file(path, src) else "lies inside"
            raise ValueError(f"{flag} {path} {where} the {what} {src}; choose an output path outside the inputs")


def check_diffusion_decoder(decoder_dir: Path, cv_dir: Path) -> None:
    """The four files the diffusion decoder reads exist (their contents are checked when they load)."""
    from nemo_cosmos_ar.diffusion_decoder.checkpoint import AUX_FILE, MODEL_FILE
    from nemo_cosmos_ar.diffusion_decoder.cv8x8x8 import DECODER_FILE, MEAN_STD_FILE

    for folder, name in (
        (decoder_dir, MODEL_FILE),
        (decoder_dir, AUX_FILE),
        (cv_dir, DECODER_FILE),
        (cv_dir, MEAN_STD_FILE),
    ):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"diffusion decoder file {folder / name} not found (the decoder needs {MODEL_FILE} + {AUX_FILE} in "
                f"{decoder_dir} and {DECODER_FILE} + {MEAN_STD_FILE} in {cv_dir}): get them with `cosmos-ar download "
                f"--checkpoint-dir {decoder_dir.parent}`, point --diffusion-decoder-dir / --cv-tokenizer at them, or "
                "pass --disable-diffusion-decoder"
            )


_PIL_LIMIT = threading.Lock()


def check_image_size(path: Path) -> None:
    """Refuse images larger than Pillow's decompression-bomb limit (about 89 megapixels) before decoding them."""
    from PIL import Image, UnidentifiedImageError

    # The limit is Pillow's global: lifted to read the header size without the bomb error, under a lock, since
    # generate reads inputs on threads (a second check would otherwise save the lifted None as the limit).
    with _PIL_LIMIT:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{path}: not a readable image ({err})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    if limit and width * height > limit:
        raise ValueError(
            f"{path} is {width}x{height} ({width * height / 1e6:.0f} megapixels), above the "
            f"{limit / 1e6:.0f}-megapixel limit for images; downscale it first (the model sees "
            "640x1024 at most)"
        )


def check_input(path: Path, is_image: bool, num_input_frames: int) -> None:
    """Open the input's header before any model is loaded: a readable image of sane size, or a video with enough
    frames (decoding happens later; a file that fails then is still reported with its name)."""
    from nemo_cosmos_ar import video_io

    if is_image:
        check_image_size(path)
        return
    available = video_io.probe(path).num_frames
    if available < num_input_frames:
        raise video_io.VideoError(
            f"{path} has {available} frame(s) but --num-input-frames {num_input_frames} takes the last "
            f"{num_input_frames}; pass --num-input-frames 1 to start from its last frame"
        )


def check_grid(grid: tuple[int, int, int], model_grid: tuple[int, int, int], height: int, width: int) -> None:
    h_max, w_max = max(model_grid[1], PRETRAIN_GRID_HW[0]), max(model_grid[2], PRETRAIN_GRID_HW[1])
    if grid[1] > h_max or grid[2] > w_max:
        raise ValueError(
            f"--resolution {height}x{width} is larger than the model was trained for (at most "
            f"{16 * h_max}x{16 * w_max}); use 640x1024 or the post-training resolution"
        )


def load_prompt_tokens(path: Path) -> torch.Tensor:
    """A saved token grid (``--save-tokens``): ``[1, T', H', W']`` or ``[T', H', W']`` int64 ids."""
    if not path.is_file():
        raise FileNotFoundError(f"--prompt-tokens {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"--prompt-tokens {path} is empty; pass a grid saved with --save-tokens")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors of a file that is no torch file
        raise ValueError(
            f"--prompt-tokens {path} is not a torch file ({type(err).__name__}); pass a grid saved with --save-tokens"
        ) from None
    if not isinstance(obj, torch.Tensor):
        raise ValueError(
            f"--prompt-tokens {path} holds a {type(obj).__name__}, not a tensor; pass a grid saved with --save-tokens"
        )
    if obj.ndim == 3:
        obj = obj[None]
    if obj.ndim != 4 or obj.shape[0] != 1 or obj.is_floating_point() or obj.is_complex() or obj.dtype == torch.bool:
        raise ValueError(
            f"--prompt-tokens {path}: expected integer token ids [1, T', H', W'], got {list(obj.shape)} {obj.dtype}"
        )
    return obj.long()
