"""Writing a video's files (``inference/writer.py``): the MP4 and the token grid both or neither; batch mode's writer
thread encodes video k while video k+1 generates, keeps the order, and reports a failed write by its line while the
other lines are written."""

import json
import threading
from pathlib import Path

import pytest
import torch

from gen_assets import make_assets
from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference import writer
from nemo_cosmos_ar.inference.options import Job


def _job(tmp_path: Path, name: str, tokens: bool = True) -> Job:
    out = tmp_path / "new" / "deeper" / f"{name}.mp4"
    return Job(1, None, out, tmp_path / "tok" / "sub" / f"{name}.pt" if tokens else None, 0, 1, None)


def _frames(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, 32, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_save_outputs_writes_the_video_and_the_tokens(tmp_path):
    job, tokens = _job(tmp_path, "v"), torch.arange(24).view(1, 2, 3, 4)
    writer.save_outputs(job, tokens, _frames(), 25.0, overwrite=False)
    assert torch.equal(torch.load(job.save_tokens, weights_only=True), tokens)
    assert video_io.probe(job.output).num_frames == 3
    assert sorted(p.name for p in job.save_tokens.parent.iterdir()) == ["v.pt"]  # no temporary file left
    with pytest.raises(FileExistsError, match="--overwrite"):
        writer.save_outputs(job, tokens, _frames(), 25.0, overwrite=False)
    writer.save_outputs(job, tokens + 1, _frames(1), 25.0, overwrite=True)
    assert torch.equal(torch.load(job.save_tokens, weights_only=True), tokens + 1)


def test_a_failed_video_write_leaves_neither_file_nor_new_folders(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(video_io, "write_video", fail)
    job = _job(tmp_path, "v")
    with pytest.raises(OSError, match="No space"):
        writer.save_outputs(job, torch.zeros(1, 2, 3, 4, dtype=torch.long), _frames(), 25.0, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the token temp file and both folder trees are gone


def test_the_background_writer_keeps_order_reports_each_error_and_bounds_the_queue(tmp_path):
    ran, gate = [], threading.Event()

    def write(name: str, fail: bool = False, wait: bool = False):
        def fn():
            if wait:
                assert gate.wait(10)
            ran.append((name, threading.current_thread().name))
            if fail:
                raise OSError(f"{name}: disk full")

        return fn

    w = writer.BackgroundWriter(depth=2)
    jobs = [_job(tmp_path, f"v{i}") for i in range(4)]
    assert w.submit(jobs[0], write("v0", wait=True)) == []
    assert w.submit(jobs[1], write("v1", fail=True)) == []
    assert w.finished() == []  # v0 waits at the gate, so nothing has finished, in order
    third = threading.Thread(target=lambda: w.submit(jobs[2], write("v2")))
    third.start()
    third.join(0.3)
    assert third.is_alive()  # two writes queued: the third submit waits for the oldest
    gate.set()
    third.join(10)
    assert not third.is_alive()
    done = w.submit(jobs[3], write("v3")) + w.close()
    assert [n for n, _ in ran] == ["v0", "v1", "v2", "v3"]
    assert all(t.startswith("cosmos-ar-writer") for _, t in ran)
    # v0 was handed back to the blocked submit (a thread here), the rest to these two calls
    assert [(j.output.stem, type(e).__name__ if e else None) for j, e, _ in done] in (
        [("v1", "OSError"), ("v2", None), ("v3", None)],
        [("v2", None), ("v3", None)],
    )
    with pytest.raises(ValueError, match="depth"):
        writer.BackgroundWriter(depth=0)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("writer"))


def _run_batch(assets, tmp_path, names) -> int:
    lines = [json.dumps({"visual_input": str(assets / n), "video_save_name": f"v{i}"}) for i, n in enumerate(names)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["generate", "--model", "tiny", "--checkpoint", str(assets / "model.pt")]
    argv += ["--tokenizer", str(assets / "tokenizer"), "--checkpoint-dir", str(assets)]
    argv += ["--batch-input-path", str(tmp_path / "in.jsonl")]
    argv += ["--output-folder", str(tmp_path / "out"), "--device", "cpu", "--no-progress", "--batch-size", "1"]
    argv += ["--num-input-frames", "1", "--save-tokens", str(tmp_path / "tok")]
    return main(argv)


def test_a_batch_writes_each_video_while_the_next_one_generates(assets, tmp_path, monkeypatch):
    """v0's write waits until v1's generation has started: sequential writes would never get there (the wait
    times out and the test fails); each write runs on the writer thread; every video and token file is written."""
    real_write, real_generate = video_io.write_video, gen.generate_tokens
    started, writes, calls = threading.Event(), [], []

    def generate(*a, **k):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            started.set()
        return real_generate(*a, **k)

    def write_video(path, *a, **k):
        writes.append((Path(path).stem, threading.current_thread().name, started.wait(60) if not writes else True))
        return real_write(path, *a, **k)

    monkeypatch.setattr(gen, "generate_tokens", generate)
    monkeypatch.setattr(video_io, "write_video", write_video)
    assert _run_batch(assets, tmp_path, ["input.png", "input.mp4", "input.png"]) == 0
    assert [w[0] for w in writes] == ["v0", "v1", "v2"]
    assert writes[0][2] is True, "v0's write did not overlap v1's generation"
    assert all(t.startswith("cosmos-ar-writer") for _, t, _ in writes)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["v0.pt", "v1.pt", "v2.pt"]


def test_a_failed_write_in_a_batch_is_its_lines_error_and_the_others_are_written(assets, tmp_path, monkeypatch, capsys):
    real_write = video_io.write_video

    def write_video(path, *a, **k):
        if Path(path).stem == "v1":
            raise OSError(f"{path}: No space left on device")
        return real_write(path, *a, **k)

    monkeypatch.setattr(video_io, "write_video", write_video)
    assert _run_batch(assets, tmp_path, ["input.png", "input.png", "input.mp4"]) == 1
    err = capsys.readouterr().err
    assert "line 2:" in err and "No space left on device" in err, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["v0.mp4", "v2.mp4"]
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["v0.pt", "v2.pt"]  # v1's tokens: neither file


def test_early_encode_hands_over_its_bytes_only_for_the_frames_it_encoded(tmp_path):
    frames = torch.randint(0, 256, (5, 16, 24, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    early = writer.EarlyEncode(frames, 25.0)
    data = early.take(frames)
    assert data is not None and early.take(frames.clone()) is data  # equal frames: the same bytes
    assert early.take(frames.flip(1)) is None and early.take(frames[:4]) is None  # blurred / other: encode again
    early.close()
    video_io.write_bytes(tmp_path / "v.mp4", data)
    info = video_io.probe(tmp_path / "v.mp4")
    assert (info.num_frames, info.height, info.width, info.fps) == (5, 16, 24, 25.0)
    # an encoding error is no hand-over: the normal write raises it, naming the file
    odd = torch.zeros(5, 15, 24, 3, dtype=torch.uint8)
    early = writer.EarlyEncode(odd, 25.0)
    assert early.take(odd) is None
    early.close()
    with pytest.raises(video_io.VideoError, match=r"odd.mp4: H.264 \(yuv420p\) needs even frame sizes, got 15x24"):
        video_io.write_video(tmp_path / "odd.mp4", odd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
