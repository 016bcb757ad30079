"""prepare-data's decode -> encode pipeline (issue 15): the prefetching thread and the decode processes write the
same bytes as the sequential path, units sharing a video stay with one decoder, errors in a decode process reach the
worker, decoding starts before the tokenizer loads, and the summary says where the time went. Uses test_data_prep's tiny videos (three good, four bad files)."""

import importlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from test_data_prep import SIZE, _assert_same_dataset, _cfg, _env, tokenizer_dir, videos  # noqa: F401 -- fixtures

from conftest import REPO
from nemo_cosmos_ar.data import encode, pipeline
from nemo_cosmos_ar.data import prepare as prep
from nemo_cosmos_ar.data.frames import ClipReader, unit_clips
from nemo_cosmos_ar.data.prepare import PrepareError, prepare_dataset
from nemo_cosmos_ar.data.windows import WindowSpec


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, videos, tokenizer_dir):  # noqa: F811
    out = tmp_path_factory.mktemp("seq") / "dataset"
    return out, prepare_dataset(_cfg(videos, out, tokenizer_dir, prefetch=0), progress=False)


@pytest.mark.parametrize("kw", [dict(prefetch=2), dict(prefetch=1, decode_workers=2)], ids=["thread", "processes"])
def test_prefetch_paths_write_the_sequential_bytes(sequential, videos, tokenizer_dir, tmp_path, kw):  # noqa: F811
    out = tmp_path / "dataset"
    summary = prepare_dataset(_cfg(videos, out, tokenizer_dir, **kw), progress=False)
    ref = sequential[1]
    assert summary.clips == ref.clips == {"train": 10, "val": 10} and summary.failed_clips == ref.failed_clips
    assert dict(summary.skipped) == dict(ref.skipped)
    _assert_same_dataset(sequential[0], out)


def test_summary_says_where_time_went(sequential):
    stages = sequential[1].stages
    busy = {"decode", "resize", "encode", "write", "wait", "startup", "compile", "other"}
    assert set(stages) == busy | {"slots", "slot_bytes", "slot_wait", "unpooled"}
    assert stages["slots"] == stages["slot_bytes"] == stages["unpooled"] == 0  # no decode processes, no slots
    assert 0.0 <= stages["other"] < stages["encode"]  # callbacks and freeing, not a stage of its own
    assert stages["decode"] > 0 and stages["encode"] > 0 and stages["wait"] == 0.0  # sequential: nothing to wait for
    assert stages["startup"] > 0 and stages["compile"] == 0.0  # eager backend: nothing compiled
    lines = sequential[1].format().splitlines()
    line = [x for x in lines if x.startswith("stages")][0]
    assert "clips/s; decode " in line and ", write " in line and "encoder waited 0.0 s for frames and spent " in line
    assert not [x for x in lines if x.startswith("frame slots")]
    line = [x for x in lines if x.startswith("startup")][0]
    assert line.startswith("startup      tokenizer load ") and line.endswith(
        " s, first-call compile 0.0 s (part of encode); prefetching decodes meanwhile"
    )


def _plan(videos, tok, tmp_path, **kw):  # noqa: F811
    cfg = _cfg(videos, tmp_path / "o", tok, **kw)
    return cfg, prep.make_plan(cfg, prep.tokenizer_checksum(cfg.tokenizer))


def test_reader_moves_each_frame_of_a_unit_once(videos, tokenizer_dir, tmp_path):  # noqa: F811
    from nemo_cosmos_ar import video_io

    cfg, plan = _plan(videos, tokenizer_dir, tmp_path)  # stride 1, units of 2 clips
    reader = ClipReader(cfg.videos, plan, cfg.windows, decode_threads=1)
    unit = reader.load(0)
    assert unit.clip_ids == [0, 1] and unit.failed == []
    assert len(unit.groups) == 1 and tuple(unit.groups[0].shape) == (18, 72, 108, 3)  # frames 0..17, raw
    assert unit.index == [(0, list(range(17))), (0, list(range(1, 18)))]
    clips = unit_clips(unit, SIZE, "cpu")
    path = os.path.join(cfg.videos, plan["videos"][0]["path"])
    expected = video_io.resize_and_crop(video_io.read_frames(path, 17, start=1), *SIZE)
    assert clips.shape == (2, 17, 64, 96, 3) and torch.equal(clips[1], expected)
    cpu = ClipReader(cfg.videos, plan, cfg.windows, decode_threads=1, resize_to=SIZE).load(0)
    assert cpu.resized and torch.equal(unit_clips(cpu, SIZE, "cpu"), clips)
    reader.close()


def test_segments_keep_a_video_with_one_decoder():
    # clips: video 0 has clips 0-2, video 1 clips 3-4, video 2 clip 5; units of 2 clips
    plan = {
        "clips": [[0, 0, 0], [0, 1, 0], [0, 2, 0], [1, 0, 0], [1, 1, 0], [2, 0, 0]],
        "units": [[0, 2], [2, 2], [4, 2]],
    }
    # unit 1 (clips 2, 3) goes on with video 0, unit 2 (clips 4, 5) with video 1: one decoder for all three
    assert pipeline.segments(plan, [0, 1, 2]) == [[0, 1, 2]]
    assert pipeline.segments(plan, [0, 2]) == [[0], [2]]  # unit 1 done already: videos 0 and 1 do not meet
    plan["clips"][4] = [2, 0, 0]  # video 1 ends with unit 1
    assert pipeline.segments(plan, [0, 1, 2]) == [[0, 1], [2]]


@pytest.mark.parametrize("decoders", [0, 2], ids=["thread", "processes"])
def test_parallel_transfers_keep_unit_order(videos, tokenizer_dir, tmp_path, decoders):  # noqa: F811
    """Three transfer threads (a CUDA worker's producer uses ``CUDA_TRANSFER_THREADS``): every unit arrives once,
    in order, with the sequential path's clips bit for bit, and the resize seconds of every unit are counted."""
    cfg, plan = _plan(videos, tokenizer_dir, tmp_path)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    units = list(range(len(plan["units"])))
    args = pipeline.ReaderArgs(cfg.videos, cfg.windows, 1, None)
    ref = [
        (f.unit, c)
        for f, c in pipeline.FrameSource(args, plan, str(plan_path), units, SIZE, "cpu", 0, 0, pipeline.Stats())
    ]
    stats = pipeline.Stats()
    source = pipeline.FrameSource(
        args, plan, str(plan_path), units, SIZE, "cpu", 1, decoders, stats, transfer_threads=3
    )
    try:
        got_frames = list(source)
        got = [(f.unit, c) for f, c in got_frames]
    finally:
        source.close()
    assert [u for u, _ in got] == [u for u, _ in ref] == units and len(units) >= 4
    for (_, a), (_, b) in zip(ref, got):
        assert (a is None and b is None) or torch.equal(a, b)
    assert stats.resize > 0.0 and stats.decode > 0.0
    assert all(f.groups == [] for f, _ in got_frames)  # host frames released by the transfer threads
    assert multiprocessing.active_children() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("prepare-data-transfer")]


def test_decode_process_error_reaches_the_worker(videos, tokenizer_dir, tmp_path):  # noqa: F811
    cfg, plan = _plan(videos, tokenizer_dir, tmp_path)
    plan["videos"][0]["bytes"] += 1  # as if the file had changed after planning
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    args = pipeline.ReaderArgs(cfg.videos, WindowSpec(17, 1, 1), 1, None)
    frames = pipeline.FrameSource(args, plan, str(plan_path), [0, 1], SIZE, "cpu", 1, 1, pipeline.Stats())
    with pytest.raises(PrepareError, match=r"clip_0.mp4 changed after this run was planned; rerun with --overwrite"):
        next(frames)
    frames.close()
    assert multiprocessing.active_children() == []


# ---- start-up: decoding runs while the tokenizer loads ----------------------------------------------------------

PATHS = [dict(prefetch=2), dict(prefetch=1, decode_workers=2)]


def _decoders() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "prepare-data-decode"]


@pytest.mark.parametrize("kw", PATHS, ids=["thread", "processes"])
def test_decoding_runs_while_the_tokenizer_loads(sequential, videos, tokenizer_dir, tmp_path, monkeypatch, kw):  # noqa: F811
    from nemo_cosmos_ar.tokenizer import backends

    cfg = _cfg(videos, tmp_path / "dataset", tokenizer_dir, **kw)
    plan, _, _ = prep._setup(cfg)
    units = list(range(len(plan["units"])))
    stats, seen, real = pipeline.Stats(), {}, backends.load_tokenizer

    def load(*a, **k):  # runs once the source exists: its decoders come up and deliver frames before any encode
        seen["threads"] = _decoders()
        deadline = time.monotonic() + 300  # a hang guard, not a timing check
        while seen["threads"] and stats.decode == 0.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        seen["decoded"] = stats.decode > 0.0
        seen["children"] = len(multiprocessing.active_children())
        return real(*a, **k)

    monkeypatch.setattr(backends, "load_tokenizer", load)
    assert multiprocessing.active_children() == []
    handled = encode.run_worker(cfg, plan, units, "shard-000", "cpu", stats=stats)
    procs = min(2, len(pipeline.segments(plan, units))) if cfg.decode_workers else 0
    assert seen == {"children": procs, "threads": ["prepare-data-decode"], "decoded": True}
    assert handled == len(plan["clips"]) and stats.startup > 0.0
    assert multiprocessing.active_children() == [] and _decoders() == []
    prep.merge_shards(cfg, plan)  # and the bytes are the sequential run's
    shutil.rmtree(tmp_path / "dataset" / prep.WORK_DIR)
    _assert_same_dataset(sequential[0], tmp_path / "dataset")


@pytest.mark.parametrize("kw", PATHS, ids=["thread", "processes"])
def test_failed_tokenizer_load_stops_the_decoders(videos, tokenizer_dir, tmp_path, monkeypatch, kw):  # noqa: F811
    from nemo_cosmos_ar.tokenizer import backends

    cfg = _cfg(videos, tmp_path / "dataset", tokenizer_dir, **kw)
    plan, _, _ = prep._setup(cfg)
    seen = {}

    def load(*a, **k):  # fails once the decoders are up (the producer thread starts the processes meanwhile)
        deadline = time.monotonic() + 300  # a hang guard, not a timing check
        while len(multiprocessing.active_children()) < cfg.decode_workers and time.monotonic() < deadline:
            time.sleep(0.02)
        seen["running"] = bool(_decoders()) and len(multiprocessing.active_children()) == cfg.decode_workers
        raise OSError("damaged encoder.jit")

    monkeypatch.setattr(backends, "load_tokenizer", load)
    message = (
        f"--tokenizer {tokenizer_dir} cannot be loaded (OSError: damaged encoder.jit); download the "
        "Cosmos-Tokenize1-DV8x16x16 folder again"
    )
    with pytest.raises(PrepareError) as e:
        encode.run_worker(cfg, plan, list(range(len(plan["units"]))), "shard-000", "cpu")
    assert str(e.value) == message and seen == {"running": True}
    assert multiprocessing.active_children() == [] and _decoders() == []


def test_pipeline_options_are_checked(videos, tokenizer_dir, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="--prefetch"):
        _cfg(videos, tmp_path / "o", tokenizer_dir, prefetch=-1)
    with pytest.raises(ValueError, match="--decode-workers"):
        _cfg(videos, tmp_path / "o", tokenizer_dir, decode_workers=100)
    with pytest.raises(ValueError, match="--resize-device 'gpu' is not one of cpu"):
        _cfg(videos, tmp_path / "o", tokenizer_dir, resize_device="gpu")
    cfg = _cfg(videos, tmp_path / "o", tokenizer_dir, resize_device="cpu", device="cpu", backend="auto")
    assert cfg.resize_device is None and cfg.backend == "eager"  # all on the CPU: nothing to choose


# ---- moving frames to the device; how decode processes start and end ---------------------------------------------


def test_staged_copy_gives_the_same_bytes():
    from nemo_cosmos_ar.data import frames

    t = torch.randint(0, 256, (7, 5, 6, 3), dtype=torch.uint8)
    assert frames._to_device(t, "cpu") is t  # nothing to stage off CUDA: the plain path
    row = t[0].nbytes  # 90 bytes
    for chunk in (1, row, 3 * row, 3 * row + 1, 100 * row):  # below a row, exact rows, ragged tail, one chunk
        out = frames._staged_copy(t, "cpu", pin=False, chunk_bytes=chunk)
        assert out.data_ptr() != t.data_ptr() and out.dtype == torch.uint8 and torch.equal(out, t)


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork server and /proc: Linux only")


@LINUX
def test_decode_processes_fork_from_a_server_and_a_dead_one_is_reported(videos, tokenizer_dir, tmp_path):  # noqa: F811
    for name in pipeline._PRELOAD[1:]:  # the fork server ignores a preload module that fails to import: check here
        importlib.import_module(name)
    cfg, plan = _plan(videos, tokenizer_dir, tmp_path)
    plan_path = tmp_path / "plan.json"
    os.mkfifo(plan_path)  # opening it blocks until a writer comes: the process decodes nothing before it is killed
    args = pipeline.ReaderArgs(cfg.videos, WindowSpec(17, 1, 1), 1, None)
    procs = pipeline._Processes(args, plan, str(plan_path), [0, 1], 1, 1)
    try:
        (proc,) = procs.procs
        assert type(proc).__name__ == "ForkServerProcess" and _ppid(proc.pid) != os.getpid()  # forked by the server
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match=r"^a decode process died \(exit code -9\); rerun to resume$"):
            procs.get(0)
    finally:
        procs.close()
    assert multiprocessing.active_children() == []  # the fork server is no child Process


WORKER = """
import json, sys, time
from nemo_cosmos_ar.data import pipeline
from nemo_cosmos_ar.data.windows import WindowSpec
plan = json.load(open(sys.argv[2]))
args = pipeline.ReaderArgs(sys.argv[1], WindowSpec(17, 1, 1), 1, None)
procs = pipeline._Processes(args, plan, sys.argv[2], list(range(len(plan["units"]))), 1, 1)
print(procs.procs[0].pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped
    except FileNotFoundError:
        return True


@LINUX
def test_decode_processes_exit_when_their_worker_is_killed(videos, tokenizer_dir, tmp_path):  # noqa: F811
    """A decode process's OS parent is the fork server, not the worker: it must still see the worker die."""
    cfg, plan = _plan(videos, tokenizer_dir, tmp_path)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert_decoder_exits_with_worker([sys.executable, "-c", WORKER, cfg.videos, str(tmp_path / "plan.json")])


def assert_decoder_exits_with_worker(cmd: list[str], settle: float = 0.0) -> None:
    """Start the worker ``cmd`` (it prints one decode process's pid), kill it after ``settle`` seconds, and assert
    that the decode process exits on its own."""
    worker = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.PIPE, text=True)
    decoder = int(worker.stdout.readline())
    time.sleep(settle)
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 120  # a hang guard, not a timing check (the decoder polls every 0.5 s)
    while not _gone(decoder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(decoder)
