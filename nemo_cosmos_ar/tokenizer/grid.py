"""The latent grid of the Cosmos-Tokenize1-DV8x16x16 tokenizer: the one owner of its size rules.

The tokenizer is temporally causal: it encodes the first frame alone, then every 8 frames give one latent frame,
so a clip has 1 + 8k frames (33 -> 5 latent frames). Height and width shrink 16 times (640x848 -> 40x53). The AR
model predicts the flattened (T', H', W') grid one token at a time, so the grid fixes the sequence length, the 3D
RoPE table, the data layout and the prompt length of generation. Everything else asks this module.

Pure Python, no torch: the model config, the video reader, the tokenizer, the recipes and the CLI all import it.
"""

from __future__ import annotations

# Compression of the Cosmos-Tokenize1-DV8x16x16 tokenizer (the "8x16x16" of its name).
TEMPORAL_COMPRESSION = 8
SPATIAL_COMPRESSION = 16


def is_tokenizable(num_frames: int, temporal: int = TEMPORAL_COMPRESSION) -> bool:
    """True when ``num_frames`` is 1 + ``temporal``·k (1, 9, 17, 25, 33, ... for DV8x16x16)."""
    return num_frames >= 1 and (num_frames - 1) % temporal == 0


def neighbouring_frame_counts(num_frames: int, temporal: int = TEMPORAL_COMPRESSION) -> tuple[int, int]:
    """The tokenizable frame counts just below (or at) and just above ``num_frames``: 16 -> (9, 17)."""
    lower = 1 + (max(num_frames, 1) - 1) // temporal * temporal
    return lower, lower + temporal


def latent_frames(num_frames: int, temporal: int = TEMPORAL_COMPRESSION) -> int:
    """Latent frames of a ``num_frames`` clip (1 + 8k -> 1 + k); raises ``ValueError`` on other counts."""
    if not is_tokenizable(num_frames, temporal):
        raise ValueError(
            f"{num_frames} frames is not 1+{temporal}k: the causal tokenizer needs 1 + {temporal}k frames "
            f"(1, {1 + temporal}, {1 + 2 * temporal}, {1 + 3 * temporal}, {1 + 4 * temporal}, ...): it encodes the "
            f"first frame alone, then {temporal} frames per latent frame"
        )
    return 1 + (num_frames - 1) // temporal


def pixel_frames(num_latent_frames: int, temporal: int = TEMPORAL_COMPRESSION) -> int:
    """Frames of a clip whose grid has ``num_latent_frames`` latent frames (5 -> 33)."""
    if num_latent_frames < 1:
        raise ValueError(f"a grid needs at least one latent frame, got {num_latent_frames}")
    return 1 + (num_latent_frames - 1) * temporal


def latent_size(height: int, width: int, spatial: int = SPATIAL_COMPRESSION) -> tuple[int, int]:
    """Latent (H', W') of ``height`` x ``width`` pixels; both must be positive multiples of ``spatial``."""
    if height <= 0 or width <= 0 or height % spatial or width % spatial:
        raise ValueError(
            f"resolution {height}x{width} is not a multiple of {spatial} in both sides; resize/crop to e.g. "
            f"{max(spatial, height // spatial * spatial)}x{max(spatial, width // spatial * spatial)} first"
        )
    return height // spatial, width // spatial


def latent_shape(
    num_frames: int,
    height: int,
    width: int,
    temporal: int = TEMPORAL_COMPRESSION,
    spatial: int = SPATIAL_COMPRESSION,
) -> tuple[int, int, int]:
    """Token grid (T', H', W') of a ``num_frames`` x ``height`` x ``width`` clip: 33x640x1024 -> (5, 40, 64)."""
    t = latent_frames(num_frames, temporal)
    return (t, *latent_size(height, width, spatial))


def clip_size(grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """(frames, height, width) of the clip whose token grid is ``grid``: (5, 40, 53) -> (33, 640, 848)."""
    t, h, w = (int(x) for x in grid)
    return pixel_frames(t), h * SPATIAL_COMPRESSION, w * SPATIAL_COMPRESSION


def tokens_per_frame(grid: tuple[int, int, int]) -> int:
    """Tokens of one latent frame (H'·W')."""
    return int(grid[1]) * int(grid[2])


def tokens_per_clip(grid: tuple[int, int, int]) -> int:
    """Tokens of one clip (T'·H'·W'): the model's sequence length; training sees one fewer (input/label shift)."""
    return int(grid[0]) * tokens_per_frame(grid)


def prompt_latent_frames(num_input_frames: int) -> int:
    """Latent frames that ``num_input_frames`` conditioning frames fill: 1 (an image) -> 1, 9 -> 2.

    Causality makes the first 1 + (n-1)/8 latent frames of a padded clip depend only on its first n frames.
    """
    return latent_frames(num_input_frames)


def prompt_tokens(num_input_frames: int, grid: tuple[int, int, int]) -> int:
    """Tokens of the prompt that ``num_input_frames`` conditioning frames give in ``grid`` (9 in 5x40x64 -> 5,120)."""
    return prompt_latent_frames(num_input_frames) * tokens_per_frame(grid)


def parse_resolution(text: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"384x640"`` (HEIGHTxWIDTH, as cosmos-predict1 writes it) or ``(384, 640)`` -> ``(384, 640)``. Only the
    format is checked here; ``latent_size`` checks the multiples of 16."""
    if isinstance(text, str):
        try:
            height, width = (int(x) for x in text.lower().replace(" ", "").split("x"))
        except ValueError:
            raise ValueError(f"resolution must look like HEIGHTxWIDTH (e.g. 640x1024), got {text!r}") from None
    else:
        height, width = (int(x) for x in text)
    return height, width
