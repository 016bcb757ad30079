"""The latent-grid rules of the DV8x16x16 tokenizer (``tokenizer/grid.py``), the one owner the model config, video
reader, tokenizer, recipes and CLI ask."""

import pytest

from nemo_cosmos_ar.tokenizer import grid


def test_compression_factors_and_known_grids():
    assert (grid.TEMPORAL_COMPRESSION, grid.SPATIAL_COMPRESSION) == (8, 16)
    assert grid.latent_shape(33, 640, 1024) == (5, 40, 64)  # generation / the released models' training grid
    assert grid.latent_shape(33, 384, 640) == (5, 24, 40)  # tealrobot_video_small
    assert grid.latent_shape(33, 640, 848) == (5, 40, 53)  # tealrobot_video, the 4B TP=4 and 12B recipes
    assert grid.latent_shape(17, 64, 96) == (3, 4, 6)  # the tiny model
    assert grid.latent_shape(1, 16, 16) == (1, 1, 1)
    assert grid.latent_shape(9, 64, 96, temporal=4, spatial=8) == (3, 8, 12)  # other tokenizer configs


def test_frames_and_pixels_round_trip():
    assert [grid.latent_frames(n) for n in (1, 9, 17, 25, 33, 121)] == [1, 2, 3, 4, 5, 16]
    assert [grid.pixel_frames(t) for t in (1, 2, 5, 16)] == [1, 9, 33, 121]
    assert grid.clip_size((5, 40, 53)) == (33, 640, 848)
    for shape in [(5, 40, 64), (3, 4, 6), (1, 24, 40)]:
        assert grid.latent_shape(*grid.clip_size(shape)) == shape
    assert [grid.is_tokenizable(n) for n in (0, 1, 8, 9, 16, 33)] == [False, True, False, True, False, True]
    assert grid.neighbouring_frame_counts(16) == (9, 17) and grid.neighbouring_frame_counts(33) == (33, 41)
    assert grid.neighbouring_frame_counts(0) == (1, 9)


def test_token_counts():
    assert grid.tokens_per_clip((5, 40, 64)) == 12_800 and grid.tokens_per_frame((5, 40, 64)) == 2560
    assert grid.tokens_per_clip((5, 40, 53)) == 10_600 and grid.tokens_per_clip((5, 24, 40)) == 4800
    assert grid.prompt_latent_frames(1) == 1 and grid.prompt_latent_frames(9) == 2
    assert grid.prompt_tokens(9, (5, 40, 64)) == 5120 and grid.prompt_tokens(1, (5, 40, 64)) == 2560


def test_errors_name_the_rule():
    with pytest.raises(ValueError) as e:
        grid.latent_shape(32, 640, 1024)
    assert str(e.value) == (
        "32 frames is not 1+8k: the causal tokenizer needs 1 + 8k frames (1, 9, 17, 25, 33, ...): it encodes the "
        "first frame alone, then 8 frames per latent frame"
    )
    with pytest.raises(ValueError) as e:
        grid.latent_shape(33, 100, 640)
    assert str(e.value) == "resolution 100x640 is not a multiple of 16 in both sides; resize/crop to e.g. 96x640 first"
    with pytest.raises(ValueError, match="resolution 0x640 is not a multiple of 16"):
        grid.latent_size(0, 640)
    with pytest.raises(ValueError, match="at least one latent frame"):
        grid.pixel_frames(0)


def test_parse_resolution():
    assert grid.parse_resolution("384x640") == (384, 640) and grid.parse_resolution("640X848") == (640, 848)
    assert grid.parse_resolution((64, 96)) == (64, 96)
    for bad in ("640", "640x", "axb", "1x2x3"):
        want = f"resolution must look like HEIGHTxWIDTH \\(e.g. 640x1024\\), got '{bad}'"
        with pytest.raises(ValueError, match=want):
            grid.parse_resolution(bad)


def test_config_video_io_and_tokenizer_use_the_same_rule():
    from nemo_cosmos_ar import video_io
    from nemo_cosmos_ar.model.config import CosmosARConfig, latent_shape_for
    from nemo_cosmos_ar.tokenizer.networks import TokenizerConfig

    assert latent_shape_for is grid.latent_shape
    assert TokenizerConfig().latent_shape(33, 640, 848) == (5, 40, 53)
    cfg = CosmosARConfig(
        n_layers=1, dim=8, n_heads=2, n_kv_heads=1, head_dim=8, ffn_hidden_size=8, latent_shape=(5, 40, 53)
    )
    assert cfg.seq_length == 10_600 and cfg.tokens_per_latent_frame == 2120
    video_io.check_tokenizable(33)
    with pytest.raises(video_io.VideoError, match=r"a clip of 16 frames cannot be tokenized.*Ask for 9 or 17 frames"):
        video_io.check_tokenizable(16)
