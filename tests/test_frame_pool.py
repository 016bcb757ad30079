"""Frame slots (``data/frame_pool.py``): decode processes hand their frames to the worker through a few recycled
shared-memory buffers instead of one new segment per unit. The bytes stay the sequential path's; a slot is granted
again only after the worker released it, and nothing rewrites it meanwhile; a unit too big for a slot still arrives;
errors, an early close and a dead worker hang nothing; no shared memory stays mapped after close. Uses
test_data_prep's tiny videos (clips 0-5 from video 0, 6-9 from video 1, 10-19 from video 2)."""

import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from test_data_pipeline import LINUX, _gone, assert_decoder_exits_with_worker, sequential  # noqa: F401 -- fixture
from test_data_prep import SIZE, _assert_same_dataset, _cfg, _env, tokenizer_dir, videos  # noqa: F401 -- fixtures

from conftest import REPO
from nemo_cosmos_ar.data import frame_pool, pipeline
from nemo_cosmos_ar.data import prepare as prep
from nemo_cosmos_ar.data.prepare import PrepareError, prepare_dataset
from nemo_cosmos_ar.data.windows import WindowSpec

FRAME = 72 * 108 * 3  # bytes of one source frame


def _plan(videos, tok, tmp_path, **kw):  # noqa: F811
    cfg = _cfg(videos, tmp_path / "o", tok, **kw)
    plan = prep.make_plan(cfg, prep.tokenizer_checksum(cfg.tokenizer))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return cfg, plan, str(path)


def _source(cfg, plan, path, prefetch=1, decoders=2, stats=None, **kw):
    args = pipeline.ReaderArgs(cfg.videos, cfg.windows, 1, None)
    units = list(range(len(plan["units"])))
    stats = stats if stats is not None else pipeline.Stats()
    return pipeline.FrameSource(args, plan, path, units, SIZE, "cpu", prefetch, decoders, stats, **kw)


def _reference(cfg, plan, path) -> list:
    return [c for _, c in _source(cfg, plan, path, prefetch=0, decoders=0)]


def _mappings() -> int:
    """Shared-memory segments of torch mapped into this process."""
    with open("/proc/self/maps") as f:
        return sum("/torch_" in line for line in f)


def _within(seconds: float, fn):
    """``fn()``, failing instead of hanging the suite: a hang guard, not a timing check."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- re-raised below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _check_log(log: list, units: list[int], slots: int) -> None:
    """Grants follow the unit order, and a slot is granted only while free, released only by its holder."""
    assert [u for kind, u, _ in log if kind == "grant"] == units
    holder: dict[int, int] = {}
    for kind, unit, slot in log:
        if kind == "grant":
            assert slot not in holder, f"slot {slot} granted to unit {unit} while unit {holder.get(slot)} held it"
            holder[slot] = unit
        else:
            assert holder.pop(slot) == unit
    assert holder == {} and {s for _, _, s in log} == set(range(slots))  # all released, every slot used


def test_slot_size_and_count_from_the_plan(monkeypatch):
    spec = WindowSpec(33, 33, 1)  # disjoint windows, as the H200 benchmark
    plan = {
        "videos": [{"height": 720, "width": 1280}, {"height": 720, "width": 1280}],
        "clips": [[0, 33 * k, 0] for k in range(6)] + [[1, 33 * k, 0] for k in range(4)],
        "units": [[0, 8], [8, 2]],
    }
    # unit 0: 6 clips of video 0 (198 frames) + 2 of video 1 (66), each group page-aligned; 264 frames = 729.9 MB
    assert frame_pool.unit_bytes(plan, 0, spec) == 729907200 == 198 * 2764800 + 66 * 2764800
    assert frame_pool.unit_bytes(plan, 1, spec) == 66 * 2764800
    assert frame_pool.unit_bytes(plan, 0, WindowSpec(33, 1, 1)) == (38 + 34) * 2764800  # overlapping: 6+32, 2+32
    # at the target size: 198 and 66 frames of 30,000 bytes, each group rounded up to whole 4096-byte pages
    assert frame_pool.unit_bytes(plan, 0, spec, resize_to=(100, 100)) == (1451 + 484) * 4096
    # 6 windows 1 apart of 3 frames 5 apart cover frames 0-15; 2 windows of 3 frames, 6 (at most k·num_frames)
    assert frame_pool.unit_bytes(plan, 0, WindowSpec(3, 1, 5)) == (16 + 6) * 2764800
    monkeypatch.delenv(frame_pool.SLOTS_ENV, raising=False)
    assert frame_pool.slot_count(2, 2) == 6 and frame_pool.slot_count(1, 1) == 3  # 2·transfers + depth
    monkeypatch.setenv(frame_pool.SLOTS_ENV, "0")
    assert frame_pool.slot_count(2, 2) == 0
    monkeypatch.setenv(frame_pool.SLOTS_ENV, "two")
    with pytest.raises(PrepareError, match=r"^COSMOS_AR_FRAME_SLOTS='two' is not a whole number of frame slots"):
        frame_pool.slot_count(2, 2)


@pytest.mark.parametrize("slots", ["1", "0"], ids=["one-slot", "no-slots"])
def test_slot_counts_write_the_sequential_bytes(sequential, videos, tokenizer_dir, tmp_path, monkeypatch, slots):  # noqa: F811
    monkeypatch.setenv(frame_pool.SLOTS_ENV, slots)
    out = tmp_path / "dataset"
    summary = prepare_dataset(_cfg(videos, out, tokenizer_dir, prefetch=1, decode_workers=2), progress=False)
    _assert_same_dataset(sequential[0], out)
    stages = summary.stages
    lines = [x for x in summary.format().splitlines() if x.startswith("frame slots")]
    if slots == "0":
        assert stages["slots"] == stages["slot_bytes"] == stages["unpooled"] == 0 and lines == []
    else:  # every unit is 2 clips of one video at stride 1: 18 frames, rounded up to whole pages
        assert stages["slots"] == 1 and stages["slot_bytes"] == 103 * 4096 >= 18 * FRAME and stages["unpooled"] == 0
        assert lines == [
            f"frame slots  1 of 0.4 MB (0.00 GB, page-locked on a GPU); decode processes waited "
            f"{stages['slot_wait']:.1f} s for one; 0 units did not fit one"
        ]


def test_slots_are_granted_again_only_after_release(videos, tokenizer_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(frame_pool.SLOTS_ENV, "2")
    cfg, plan, path = _plan(videos, tokenizer_dir, tmp_path)
    ref = _reference(cfg, plan, path)
    held, intact, aliased = {}, [], []
    real_get, real_release, real_transfer = pipeline._Processes.get, pipeline._Processes.release, None

    def get(self, unit, stop=None):  # what the worker got, as views of the slot and as a copy
        frames, slot = real_get(self, unit, stop)
        held[slot] = [(g, g.clone()) for g in frames.groups]
        return frames, slot

    def release(self, slot):  # the slot still holds what the worker got: no decode process wrote into it meanwhile
        time.sleep(0.01)  # gives a wrongly granted slot's writer time to show (not a timing assertion)
        intact.append(all(torch.equal(g, copy) for g, copy in held.pop(slot)))
        real_release(self, slot)

    def transfer(self, frames, slot=None):  # the clips never alias a slot, which is reused after this returns
        clips, seconds = real_transfer(self, frames, slot)
        buf = self._pool.buffers[slot]
        aliased.append(buf.data_ptr() <= clips.data_ptr() < buf.data_ptr() + buf.numel())
        return clips, seconds

    real_transfer = pipeline.FrameSource._transfer
    monkeypatch.setattr(pipeline._Processes, "get", get)
    monkeypatch.setattr(pipeline._Processes, "release", release)
    monkeypatch.setattr(pipeline.FrameSource, "_transfer", transfer)
    before, stats = _mappings(), pipeline.Stats()
    source = _source(cfg, plan, path, stats=stats, transfer_threads=2)
    try:
        got = _within(300, lambda: [(f.unit, f.groups, c) for f, c in source])
    finally:
        _within(60, source.close)
    units = list(range(len(plan["units"])))
    assert [u for u, _, _ in got] == units and len(units) == 10  # 10 units through 2 slots: each used 5 times
    assert all(groups == [] and torch.equal(c, r) for (_, groups, c), r in zip(got, ref))
    assert intact == [True] * 10 and aliased == [False] * 10
    _check_log(source._procs.grants.log, units, 2)
    assert (stats.slots, stats.slot_bytes, stats.unpooled) == (2, 2 * 103 * 4096, 0)
    got = held = source = None  # drop the last references to the slots
    gc.collect()
    assert multiprocessing.active_children() == [] and _mappings() == before  # every slot unmapped


def test_a_unit_too_big_for_a_slot_goes_through_its_own_segment(videos, tokenizer_dir, tmp_path, monkeypatch):  # noqa: F811
    # Units of 3 clips: unit 3 (clips 9-11) has frames of videos 1 and 2, two groups (17 + 18 frames); the others
    # one group of 19 frames. Slots sized as if every unit were one group: unit 3 does not fit.
    monkeypatch.setenv(frame_pool.SLOTS_ENV, "1")
    monkeypatch.setattr(frame_pool, "unit_bytes", lambda *a, **k: 19 * FRAME)
    cfg, plan, path = _plan(videos, tokenizer_dir, tmp_path, batch_size=3)
    ref = _reference(cfg, plan, path)
    stats = pipeline.Stats()
    source = _source(cfg, plan, path, stats=stats)
    try:
        got = _within(300, lambda: [c for _, c in source])
    finally:
        _within(60, source.close)
    assert len(got) == len(ref) == 7 and all(torch.equal(a, b) for a, b in zip(got, ref))
    assert stats.unpooled == 1 and stats.slots == 1
    _check_log(source._procs.grants.log, list(range(7)), 1)  # its slot was released when it arrived


def test_decode_error_after_pooled_units_reaches_the_worker(videos, tokenizer_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(frame_pool.SLOTS_ENV, "1")
    cfg, plan, _ = _plan(videos, tokenizer_dir, tmp_path)
    ref = _reference(cfg, plan, str(tmp_path / "plan.json"))
    plan["videos"][2]["bytes"] += 1  # units 5-9 (video 2) fail; units 0-4 come first, as in the sequential path
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    source = _source(cfg, plan, str(tmp_path / "plan.json"))
    got = []

    def consume():
        for _, clips in source:
            got.append(clips)

    try:
        with pytest.raises(
            PrepareError, match=r"clip_2.mp4 changed after this run was planned; rerun with --overwrite"
        ):
            _within(300, consume)
    finally:
        _within(60, source.close)
    assert len(got) == 5 and all(torch.equal(a, b) for a, b in zip(got, ref))
    assert multiprocessing.active_children() == []


def test_early_close_while_decoders_wait_for_a_slot(videos, tokenizer_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(frame_pool.SLOTS_ENV, "1")
    cfg, plan, path = _plan(videos, tokenizer_dir, tmp_path)
    before = _mappings()
    source = _source(cfg, plan, path)
    frames, _ = _within(300, lambda: next(source))
    assert frames.unit == 0  # the other units wait: one slot, a full queue
    _within(60, source.close)
    source = frames = None
    gc.collect()
    assert multiprocessing.active_children() == [] and _mappings() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("prepare-data")]


WORKER = """
import json, sys, time
from nemo_cosmos_ar.data import frame_pool, pipeline
from nemo_cosmos_ar.data.windows import WindowSpec
plan = json.load(open(sys.argv[2]))
args = pipeline.ReaderArgs(sys.argv[1], WindowSpec(17, 1, 1), 1, None)
pool = frame_pool.FramePool(1, 1 << 20)
procs = pipeline._Processes(args, plan, sys.argv[2], list(range(len(plan["units"]))), 1, 1, pool)
print(procs.procs[0].pid, flush=True)
time.sleep(600)
"""


@LINUX
def test_decode_process_waiting_for_a_slot_exits_when_its_worker_is_killed(videos, tokenizer_dir, tmp_path):  # noqa: F811
    """The worker never takes a unit: the decode process fills its one slot and queue, then waits for a grant."""
    cfg, plan, path = _plan(videos, tokenizer_dir, tmp_path)
    assert_decoder_exits_with_worker([sys.executable, "-c", WORKER, cfg.videos, path], settle=1.0)  # reach the wait


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(k) for k in f.read().split()]
    except FileNotFoundError:
        return []
    return out + [d for k in out for d in _descendants(k)]


@LINUX
def test_ctrl_c_with_decode_processes_leaves_nothing_running(tokenizer_dir, tmp_path):  # noqa: F811
    """SIGINT to a real ``prepare-data`` whose decode processes wait for slots: it exits as interrupted, and the
    fork server and every decode process go too."""
    from nemo_cosmos_ar.data import samples

    (tmp_path / "videos").mkdir()
    for i in range(2):  # two videos: two decode processes; 44 clips each, units of one clip
        samples.write_mp4(str(tmp_path / "videos" / f"v{i}.mp4"), samples.render_bouncing_balls(60, 64, 96, seed=i))
    out = tmp_path / "ds"
    argv = "--resolution 64x96 --num-frames 17 --batch-size 1 --device cpu --no-progress --decode-workers 2"
    cmd = [sys.executable, "-m", "nemo_cosmos_ar.cli", "prepare-data", "--videos", str(tmp_path / "videos")]
    cmd += ["--output", str(out), "--tokenizer", str(tokenizer_dir), *argv.split()]
    proc = subprocess.Popen(
        cmd, env={**_env(), frame_pool.SLOTS_ENV: "1"}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300  # hang guards, not timing checks
    while proc.poll() is None and time.monotonic() < deadline:
        if any(j.stat().st_size for j in (out / "_work").glob("shard-*.jsonl")):
            break  # encoding: the decode processes are up
        time.sleep(0.02)
    kids = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert len(kids) >= 3  # the fork server and its two decode processes (and the resource tracker)
    deadline = time.monotonic() + 60
    while not all(_gone(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [k for k in kids if not _gone(k)] == []


@LINUX
def test_the_handoff_to_the_encode_loop_survives_ctrl_c_and_honours_stop():
    """``pipeline._Handoff``: bounded and in order; ``put`` gives up once stop is set while it is full; and a
    ``get`` interrupted by SIGINT (KeyboardInterrupt in the main thread, as Ctrl-C in the encode loop) leaves it
    usable: the producer's next put goes through and the item comes out. (``queue.Queue``'s get, interrupted at the
    wrong moment, once left its mutex locked and the producer waiting for it forever; see the class docstring.)"""
    stop = threading.Event()
    h = pipeline._Handoff(2)
    assert h.put(1, stop) and h.put(2, stop)
    box: list = []
    full = threading.Thread(target=lambda: box.append(h.put(3, stop)))
    full.start()
    full.join(timeout=0.2)
    assert full.is_alive() and box == []  # no room: waiting
    stop.set()
    full.join(timeout=10)
    assert not full.is_alive() and box == [False]
    assert [h.get(), h.get()] == [1, 2]
    stop.clear()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("a signal's KeyboardInterrupt reaches the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the test runner set
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    rescue = threading.Timer(20, h._q.put, ("rescue",))  # a lost signal fails the test instead of hanging it
    try:
        timer.start()
        rescue.start()
        with pytest.raises(KeyboardInterrupt):
            h.get()  # nothing queued: blocks until the SIGINT
    finally:
        signal.signal(signal.SIGINT, previous)
        timer.cancel()
        rescue.cancel()
    producer = threading.Thread(target=lambda: box.append(h.put("after", stop)))
    producer.start()
    producer.join(timeout=10)
    assert not producer.is_alive() and box == [False, True]
    assert h.get() == "after"
