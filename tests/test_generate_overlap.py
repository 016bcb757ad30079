"""What a single ``cosmos-ar generate`` overlaps with the model loads: the input clip is read (decoded, resized,
cropped: ~0.6 s for 9 frames at 720p on the 2-core CPU machine) on a thread while the AR model loads, and the
prompt is encoded on a thread beside the AR model load too (0.4-0.7 s on the H200); the tokens are those of the
sequential order, and a bad input is still the same one-line error."""

import re
import threading
from concurrent.futures import Future

import pytest
import torch

from gen_assets import cli_args, make_assets
from nemo_cosmos_ar.cli import main
from nemo_cosmos_ar.inference import pipeline


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("overlap"))


@pytest.mark.parametrize("name", ["input.png", "input.mp4"])
def test_the_input_is_read_on_a_thread_while_the_ar_model_loads(assets, tmp_path, monkeypatch, name):
    calls, engine_started = [], threading.Event()
    real_input, real_engine = pipeline.load_input, pipeline.Runner.load_engine

    def load_input(*args):
        # Finishes only once the AR model has started loading: read before it (sequentially), this would wait 20 s
        # and record False.
        calls.append((threading.current_thread().name, engine_started.wait(20)))
        return real_input(*args)

    def load_engine(self):
        engine_started.set()
        return real_engine(self)

    monkeypatch.setattr(pipeline, "load_input", load_input)
    monkeypatch.setattr(pipeline.Runner, "load_engine", load_engine)
    tokens = tmp_path / "t.pt"
    extra = ("--num-input-frames", "9") if name.endswith(".mp4") else ()
    assert main(cli_args(assets, assets / name, tmp_path / "v.mp4", "--save-tokens", str(tokens), *extra)) == 0
    assert len(calls) == 1 and calls[0][0].startswith("cosmos-ar-input") and calls[0][1] is True
    # the same tokens as when the prompt reads the input itself (both runs use the default seed)
    monkeypatch.setattr(pipeline.Runner, "prefetch_input", lambda self, job: None)
    again = tmp_path / "t2.pt"
    assert main(cli_args(assets, assets / name, tmp_path / "v2.mp4", "--save-tokens", str(again), *extra)) == 0
    assert torch.equal(torch.load(tokens, weights_only=True), torch.load(again, weights_only=True))


def test_an_unreadable_input_is_still_one_line(assets, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    rc = main(cli_args(assets, bad, tmp_path / "v.mp4", "--num-input-frames", "9"))
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("cosmos-ar generate: ") and "broken.mp4" in lines[0]
    assert not (tmp_path / "v.mp4").exists()


def test_image_size_checks_on_threads_keep_pillows_limit(assets, tmp_path):
    """``check_image_size`` lifts Pillow's global pixel limit to read a header: with inputs read on threads, a check
    must never see another's lifted limit (it would save None and let a 200-megapixel image through)."""
    from PIL import Image
    from test_generate_bad_input import _png_header

    from nemo_cosmos_ar.inference.checks import check_image_size

    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header(20000, 10000))
    limit, stop, errors = Image.MAX_IMAGE_PIXELS, threading.Event(), []

    def hammer():
        while not stop.is_set():
            check_image_size(assets / "input.png")

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(300):
            try:
                check_image_size(huge)
            except ValueError as err:
                errors.append("20000x10000 (200 megapixels)" in str(err))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == [True] * 300 and Image.MAX_IMAGE_PIXELS == limit


def test_a_batch_reads_each_chunks_inputs_on_the_reader_threads(assets, tmp_path, monkeypatch):
    """Batch mode: the first chunk's inputs are queued for reading before the AR model loads, each later chunk's
    before the chunk ahead of it generates; every input is read once, on a reader thread."""
    import json

    from nemo_cosmos_ar.inference import generator as gen

    events, reads = [], []
    real_input, real_prefetch, real_generate = pipeline.load_input, pipeline.Runner.prefetch_input, gen.generate_tokens

    def load_input(path, *a):
        reads.append((path.name, threading.current_thread().name))
        return real_input(path, *a)

    def prefetch(self, job):
        events.append(job.output.stem)
        return real_prefetch(self, job)

    monkeypatch.setattr(pipeline, "load_input", load_input)
    monkeypatch.setattr(pipeline.Runner, "prefetch_input", prefetch)
    monkeypatch.setattr(
        pipeline.Runner, "load_engine", lambda self, r=pipeline.Runner.load_engine: events.append("load") or r(self)
    )
    monkeypatch.setattr(gen, "generate_tokens", lambda *a, **k: events.append("generate") or real_generate(*a, **k))
    names = ["input.png", "input.mp4", "input.png"]
    lines = [json.dumps({"visual_input": str(assets / n), "video_save_name": f"v{i}"}) for i, n in enumerate(names)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["generate", "--model", "tiny", "--checkpoint", str(assets / "model.pt"), "--tokenizer"]
    argv += [
        str(assets / "tokenizer"),
        "--checkpoint-dir",
        str(assets),
        "--batch-input-path",
        str(tmp_path / "in.jsonl"),
    ]
    argv += ["--output-folder", str(tmp_path / "out"), "--device", "cpu", "--no-progress", "--batch-size", "1"]
    assert main(argv + ["--num-input-frames", "1"]) == 0
    assert events.index("v0") < events.index("load") < events.index("v1"), events  # the first read beside the load
    assert [e for e in events if e != "load"] == ["v0", "v1", "generate", "v2", "generate", "generate"], events
    assert sorted(n for n, _ in reads) == sorted(names) and all(t.startswith("cosmos-ar-input") for _, t in reads)


def test_the_prompt_is_encoded_on_a_thread_while_the_ar_model_loads(assets, tmp_path, monkeypatch, capsys):
    from nemo_cosmos_ar.tokenizer import backends

    calls, engine_started = [], threading.Event()
    real_engine = pipeline.Runner.load_engine

    def load_engine(self):
        engine_started.set()
        return real_engine(self)

    def encoded(real):
        def encode(self, *a, **k):
            # Returns only once the AR model has started loading: encoded before it, this would wait 20 s, False.
            calls.append((threading.current_thread().name, engine_started.wait(20)))
            return real(self, *a, **k)

        return encode

    for cls in (backends.EagerTokenizer, backends.JitTokenizer):
        monkeypatch.setattr(cls, "encode", encoded(cls.encode))
    monkeypatch.setattr(pipeline.Runner, "load_engine", load_engine)
    tokens, extra = tmp_path / "t.pt", ("--num-input-frames", "9")
    assert main(cli_args(assets, assets / "input.mp4", tmp_path / "v.mp4", "--save-tokens", str(tokens), *extra)) == 0
    assert len(calls) == 1 and calls[0][0].startswith("cosmos-ar-encode") and calls[0][1] is True
    assert re.search(r"encode \d+\.\ds \(\d+\.\ds beside the AR model load\), prefill", capsys.readouterr().out)

    def in_order(self, job):  # the prompt encoded in the caller's thread, before the AR model loads
        done = Future()
        done.set_result(self.prompt(job))
        return done

    monkeypatch.setattr(pipeline.Runner, "prompt_beside", in_order)
    engine_started.set()
    again = tmp_path / "t2.pt"
    assert main(cli_args(assets, assets / "input.mp4", tmp_path / "v2.mp4", "--save-tokens", str(again), *extra)) == 0
    assert torch.equal(torch.load(tokens, weights_only=True), torch.load(again, weights_only=True))
