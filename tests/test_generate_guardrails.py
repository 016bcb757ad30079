"""``cosmos-ar generate`` with the video guardrails, on CPU with tiny random-weight guardrail models (test_guardrails'
models, written where ``cosmos-ar download`` puts the real weights; no download): on by default when their weights
are under --checkpoint-dir; a safe video is written face-blurred exactly as ``blur_faces`` does it; an unsafe one
leaves nothing (video and tokens) and exits 1 with one line; no weights: written, with a one-line warning;
``--guardrail`` without weights: a one-line error before any model loads; ``--disable-guardrail``: no model loaded;
a batch with one unsafe line; offloading."""

import json
import threading

import numpy as np
import pytest
import torch
from test_guardrails import tiny_retinaface

from gen_assets import GUARDRAIL_DIR, cli_args, make_assets, make_guardrail_weights
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import build_parser, main
from nemo_cosmos_ar.cli.generate import DV_NOTE, NOT_FILTERED, options_from_args
from nemo_cosmos_ar.guardrails import face_blur, paths, runner
from nemo_cosmos_ar.inference import engine, pipeline
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

# 33 frames at 25 fps: frames 0, 12, 24 are checked
FLAGGED = (
    "the video content safety filter flagged the generated video (Violence in 3 of 3 sampled frames, first at "
    "frame 0); it was not written"
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("guard"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Checkpoints folders whose tiny classifier says safe (class 0) / unsafe (class 2, Violence) for every frame."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "safe": make_guardrail_weights(root / "safe", 0),
        "unsafe": make_guardrail_weights(root / "unsafe", 2),
        "noface": make_guardrail_weights(root / "noface", 0, faces=False),
    }


class Counts(dict):
    """Loads per model, and ``threads``: (model, the loading thread's name) per load."""

    def __init__(self, **counts: int) -> None:
        super().__init__(counts)
        self.threads: list[tuple[str, str]] = []


@pytest.fixture
def loads(monkeypatch):
    """The tiny RetinaFace architecture for the loader, and a count of guardrail model loads from disk."""
    monkeypatch.setattr(face_blur, "retinaface_resnet50", tiny_retinaface)
    counts = Counts(safety=0, face=0)

    def counted(key, real):
        def load(*a, **k):
            counts[key] += 1
            counts.threads.append((key, threading.current_thread().name))
            return real(*a, **k)

        return load

    monkeypatch.setattr(runner, "load_safety_filter", counted("safety", runner.load_safety_filter))
    monkeypatch.setattr(runner, "load_face_detector", counted("face", runner.load_face_detector))
    return counts


class Written(list):
    """``(frames, layout)`` of each video written: an MP4 encoded (``encode_mp4``) whose bytes reached the disk
    (``write_bytes``). ``encodes``: every encode, written or dropped, as ``(frames, layout)``."""

    def __init__(self) -> None:
        super().__init__()
        self.encodes: list[tuple] = []
        self._bytes: list[bytes] = []


@pytest.fixture
def written(monkeypatch):
    calls = Written()
    real_encode, real_write = video_io.encode_mp4, video_io.write_bytes

    def encode(v, *a, **k):
        data = real_encode(v, *a, **k)
        calls.encodes.append((v, k.get("layout")))
        calls._bytes.append(data)
        return data

    def write(path, data):
        calls.extend(calls.encodes[i] for i, b in enumerate(calls._bytes) if b is data)
        return real_write(path, data)

    monkeypatch.setattr(video_io, "encode_mp4", encode)
    monkeypatch.setattr(video_io, "write_bytes", write)
    return calls


def _err_lines(capsys) -> tuple[list[str], str]:
    cap = capsys.readouterr()
    return [x for x in cap.err.splitlines() if x.strip()], cap.out


def test_default_on_a_safe_video_is_written_with_faces_blurred(assets, weights, loads, written, tmp_path, capsys):
    out, tok = tmp_path / "v.mp4", tmp_path / "v.pt"
    flags = ("--checkpoint-dir", str(weights["safe"]), "--save-tokens", str(tok), "--no-progress")
    argv = cli_args(assets, assets / "input.png", out, *flags)
    assert main(argv) == 0
    err, stdout = _err_lines(capsys)
    # No warning (only the note that no diffusion decoder is there); the timing line has the guardrail stage.
    assert err == [DV_NOTE.format(what="the output is", folder=weights["safe"])] and "guardrails " in stdout
    assert loads == {"safety": 1, "face": 1}  # loaded once, up front
    # on the guardrails' thread, beside the other loads
    assert loads.threads == [("safety", "cosmos-ar-guardrails"), ("face", "cosmos-ar-guardrails")]
    assert video_io.probe(out).num_frames == 33
    ((frames, layout),) = written
    assert layout == "THWC" and frames.dtype == torch.uint8 and frames.shape == (33, 64, 96, 3)
    frames = frames.numpy()
    # What the DV decoder made of the saved tokens, then the face blur with the same weights: exactly what was written.
    grid = torch.load(tok, weights_only=True)
    decoded = video_io.to_uint8_frames(load_tokenizer(assets / "tokenizer").decode(grid)[0], "CTHW")
    g = weights["safe"] / GUARDRAIL_DIR
    detector = face_blur.load_face_detector(g / paths.FACE_DETECTOR)
    assert all(len(d) > 0 for d in detector.detect(decoded))  # faces found in every frame ...
    assert np.array_equal(frames, face_blur.blur_faces(decoded, detector))
    assert (frames != decoded).mean() > 0.1  # ... so the blur changed the video (a missing blur would show)
    # The MP4 encoded while the guardrails ran (the unblurred frames) was dropped; the blurred one was encoded after.
    assert len(written.encodes) == 2 and np.array_equal(written.encodes[0][0].numpy(), decoded)


def test_no_face_writes_the_mp4_encoded_while_the_guardrails_ran(assets, weights, loads, written, tmp_path, capsys):
    # Lossless: the frames encoded beside the guardrails are exactly those of the same run with the guardrails off,
    # and the file holds that one encode's bytes. (The bytes of two encodes of the same frames can differ: x264's
    # frame threads are not repeatable here, so the check is on the frames and on which encode was written.)
    out, off = tmp_path / "v.mp4", tmp_path / "off.mp4"
    assert main(cli_args(assets, assets / "input.png", out, "--checkpoint-dir", str(weights["noface"]))) == 0
    assert len(written) == len(written.encodes) == 1 and "guardrails " in capsys.readouterr().out
    assert out.read_bytes() == written._bytes[0]
    assert main(cli_args(assets, assets / "input.png", off, "--disable-guardrail")) == 0
    assert len(written.encodes) == 2 and torch.equal(written.encodes[0][0], written.encodes[1][0])
    assert written.encodes[0][1] == written.encodes[1][1] == "THWC"
    assert video_io.read_frames(out).shape == (33, 64, 96, 3)
    assert not [t for t in threading.enumerate() if t.name == "cosmos-ar-early-encode"]


@pytest.mark.parametrize("offload", [False, True], ids=["resident", "offload"])
def test_an_unsafe_video_writes_nothing_and_exits_1(assets, weights, loads, written, tmp_path, capsys, offload):
    out, tok = tmp_path / "out" / "v.mp4", tmp_path / "tok" / "v.pt"
    flags = ("--checkpoint-dir", str(weights["unsafe"]), "--save-tokens", str(tok), "--no-progress")
    argv = cli_args(assets, assets / "input.png", out, *flags, *(["--offload_guardrail_models"] if offload else []))
    assert main(argv) == 1
    err, stdout = _err_lines(capsys)
    assert err == [f"cosmos-ar generate: {out}: {FLAGGED}"] and stdout == ""
    assert written == [] and sorted(tmp_path.rglob("*")) == []  # no video, no tokens, no folder, no temporary file
    assert len(written.encodes) == 1  # encoded beside the guardrails, then dropped; its thread is done
    assert not [t for t in threading.enumerate() if t.name == "cosmos-ar-early-encode"]
    # Resident: both models loaded up front. Offloaded: each right before its use, and an unsafe video is not blurred.
    assert loads == ({"safety": 1, "face": 0} if offload else {"safety": 1, "face": 1})


def test_no_weights_writes_the_video_with_a_one_line_warning(assets, loads, written, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(cli_args(assets, assets / "input.png", out, "--no-progress")) == 0  # --checkpoint-dir: no weights
    err, stdout = _err_lines(capsys)
    assert err == [
        NOT_FILTERED.format(what="the output is", folder=assets),
        DV_NOTE.format(what="the output is", folder=assets),
    ]
    assert err[0] == (
        f"cosmos-ar generate: warning: the output is NOT safety-filtered: no guardrail weights under "
        f"{assets} (get them with `cosmos-ar download --checkpoint-dir {assets}`, or pass "
        "--disable-guardrail to silence this)"
    )
    assert f"wrote {out}" in stdout and "guardrails " not in stdout
    assert loads == {"safety": 0, "face": 0} and len(written) == 1  # the decoded video, no guardrail ran
    assert video_io.probe(out).num_frames == 33


def test_guardrail_without_weights_is_an_error_before_any_work(assets, loads, tmp_path, capsys, monkeypatch):
    def expensive(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(engine, "load_engine", expensive)
    monkeypatch.setattr(pipeline, "load_tokenizer", expensive)
    out = tmp_path / "out"
    assert main(cli_args(assets, assets / "input.png", out / "v.mp4", "--guardrail", "--no-progress")) == 1
    err, stdout = _err_lines(capsys)
    assert err == [
        f"cosmos-ar generate: error: no guardrail weights ({paths.SAFETY_FILTER} and {paths.FACE_DETECTOR})"
        f" under {assets} (no guardrail/ folder up to 3 levels down); {paths.HINT}"
    ]
    assert stdout == "" and not out.exists() and loads == {"safety": 0, "face": 0}
    argv = cli_args(assets, assets / "input.png", out / "v.mp4", "--guardrail", "--disable-guardrail")
    assert main(argv) == 1
    assert _err_lines(capsys)[0] == [
        "cosmos-ar generate: error: pass either --guardrail or --disable-guardrail, not both"
    ]


@pytest.mark.parametrize("flag", ["--disable-guardrail", "--disable_guardrail"])
def test_disable_guardrail_loads_no_model(assets, weights, loads, written, tmp_path, capsys, monkeypatch, flag):
    def never(*a, **k):
        raise AssertionError("guardrails built")

    monkeypatch.setattr(runner.VideoGuardrails, "from_checkpoint_dir", never)
    out = tmp_path / "v.mp4"
    flags = ("--checkpoint-dir", str(weights["unsafe"]), flag, "--no-progress")
    argv = cli_args(assets, assets / "input.png", out, *flags)
    assert main(argv) == 0  # the weights would flag it: they did not run
    err, _ = _err_lines(capsys)
    assert err == [DV_NOTE.format(what="the output is", folder=weights["unsafe"])]  # no guardrail warning
    assert loads == {"safety": 0, "face": 0} and len(written) == 1
    assert video_io.probe(out).num_frames == 33


@pytest.mark.parametrize("offload", [False, True], ids=["resident", "offload"])
def test_batch_with_one_unsafe_line(assets, weights, loads, tmp_path, capsys, monkeypatch, offload):
    """Three lines, the second video judged unsafe (the tiny classifier's bias turned to Violence for that call only):
    that line is reported like a bad line, the other two are written face-blurred, the exit code is 1."""
    calls = []
    real = runner.check_video

    def check(frames, filt, fps):
        calls.append(fps)
        with torch.no_grad():  # the classifier's last layer has zero weights: its bias alone decides
            filt.classifier.network.layers[6].bias.copy_(torch.eye(7)[2 if len(calls) == 2 else 0] * 4)
        return real(frames, filt, fps=fps)

    monkeypatch.setattr(runner, "check_video", check)
    folder = tmp_path / "out"
    jsonl = tmp_path / "in.jsonl"
    lines = [{"visual_input": str(assets / "input.png"), "seed": i, "video_save_name": f"v{i}"} for i in range(3)]
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    argv = ["generate", "--model", "tiny", "--checkpoint", str(assets / "model.pt")]
    argv += ["--tokenizer", str(assets / "tokenizer"), "--checkpoint-dir", str(weights["safe"])]
    argv += ["--batch-input-path", str(jsonl), "--output-folder", str(folder), "--save-tokens", str(tmp_path / "tok")]
    argv += ["--batch-size", "3", "--device", "cpu", "--no-progress", *(["--offload-guardrail"] if offload else [])]
    assert main(argv) == 1
    err, stdout = _err_lines(capsys)
    assert err == [
        f"cosmos-ar generate: line 2: {folder / 'v1.mp4'}: {FLAGGED}; skipped",
        DV_NOTE.format(what="these videos are", folder=weights["safe"]),
    ]
    assert "wrote 2 of 3 videos" in stdout and "1 failed (line 2)" in stdout
    assert calls == [25.0] * 3
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["in.jsonl", "out/v0.mp4", "out/v2.mp4", "tok/v0.pt", "tok/v2.pt"]
    # Resident: loaded once for the batch. Offloaded: the filter per video, the detector per safe video.
    assert loads == ({"safety": 3, "face": 2} if offload else {"safety": 1, "face": 1})


def test_guardrail_options_and_the_guides_spellings(weights, tmp_path):
    def opts(*extra):
        return options_from_args(build_parser().parse_args(["generate", "--input", "a.png", *extra]))

    safe = weights["safe"]
    assert (opts("--checkpoint-dir", str(safe)).guardrail_dir, opts("--checkpoint_dir", str(safe)).guardrail_dir) == (
        safe,
        safe,
    )
    assert opts("--checkpoint-dir", str(tmp_path)).guardrail_dir is None  # default on, no weights: off (warned)
    assert opts("--checkpoint-dir", str(tmp_path), "--guardrail").guardrail_dir == tmp_path  # checked, fails later
    assert opts("--checkpoint-dir", str(safe), "--disable_guardrail").guardrail_dir is None
    o = opts("--checkpoint_dir", str(safe), "--offload_guardrail_models")
    assert (o.guardrail_dir, o.offload_guardrail, opts("--offload-guardrail").offload_guardrail) == (safe, True, True)
    assert not opts().offload_guardrail
