"""Video guardrails with tiny random-weight models built from configs (no download): the safety filter over a real
MP4 and what its verdict controls, the face pixelation (exactly inside the boxes), RetinaFace's priors / decoding /
NMS against their formulas, and loading released-layout weights with ``weights_only=True``."""

from __future__ import annotations

import functools
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.data.samples import render_bouncing_balls
from nemo_cosmos_ar.guardrails import face_blur, paths, retinaface, safety, siglip, weights
from nemo_cosmos_ar.guardrails.retinaface import ResNetBody, RetinaFace, RetinaFaceConfig
from nemo_cosmos_ar.guardrails.runner import VideoGuardrails

TINY_SIGLIP = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14
)
TINY_FACE = RetinaFaceConfig(out_channels=16)


def tiny_safety(bias_class: int | None = None, seed: int = 0) -> safety.VideoSafetyFilter:
    """Tiny SigLIP + classifier. ``bias_class``: zero the last layer and favour that class (a fixed decision)."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    encoder = SiglipVisionModel(SiglipVisionConfig(**TINY_SIGLIP))
    clf = safety.SafetyClassifier(input_size=32)
    if bias_class is not None:
        last = clf.network.layers[6]
        torch.nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(torch.nn.functional.one_hot(torch.tensor(bias_class), 7).float() * 4)
    return safety.VideoSafetyFilter(encoder, clf, siglip.SiglipPreprocess(28))


def tiny_retinaface(seed: int = 0) -> RetinaFace:
    torch.manual_seed(seed)
    body = ResNetBody(layers=(1, 1, 1, 1), width=4)
    return RetinaFace(body, body.out_channels, TINY_FACE)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    """A real 33-frame 25 fps H.264 file, read back as uint8 [T, H, W, 3]."""
    path = tmp_path_factory.mktemp("v") / "balls.mp4"
    video_io.write_video(path, render_bouncing_balls(33, 64, 96, seed=1), fps=25)
    return path, video_io.read_frames(path), video_io.probe(path).fps


def test_safety_filter_over_mp4_matches_its_definition(mp4):
    path, frames, fps = mp4
    assert frames.shape == (33, 64, 96, 3) and fps == 25
    filt = tiny_safety()
    verdict = safety.check_video(frames, filt, fps=fps)
    assert [f.index for f in verdict.frames] == [0, 12, 24]  # 2 fps at 25 fps
    # the definition, step by step: SigLIP pooled output, L2-normalised, MLP, softmax, argmax; safe iff class 0
    with torch.no_grad():
        px = filt.processor(images=[frames[i].numpy() for i in (0, 12, 24)], return_tensors="pt")["pixel_values"]
        assert px.shape == (3, 3, 28, 28)
        emb = filt.encoder(pixel_values=px).pooler_output
        probs = torch.softmax(filt.classifier(emb / emb.norm(dim=-1, keepdim=True)), -1)
    for fv, p in zip(verdict.frames, probs):
        k = int(p.argmax())
        assert (fv.label, fv.safe) == (safety.CLASS_NAMES[k], k == 0)
        assert fv.probability == pytest.approx(float(p[k]), abs=1e-6)
    assert verdict.safe == all(int(p.argmax()) == 0 for p in probs)


def test_siglip_preprocessing_is_transformers_bit_for_bit(mp4, tmp_path):
    from transformers import SiglipImageProcessor

    _, frames, _ = mp4
    imgs = [frames[i].numpy() for i in (0, 12)]
    ref = SiglipImageProcessor(size={"height": 28, "width": 28})(images=imgs, return_tensors="pt")["pixel_values"]
    ours = siglip.SiglipPreprocess(28)(images=imgs)["pixel_values"]
    assert ours.dtype == ref.dtype == torch.float32 and ours.shape == ref.shape == (2, 3, 28, 28)
    assert torch.equal(ours, ref)
    # a folder's own preprocessor_config.json: non-square, another filter, mean and std
    cfg = dict(size={"height": 30, "width": 20}, resample=2, image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.3, 0.25])
    SiglipImageProcessor(**cfg).save_pretrained(tmp_path)
    ref = SiglipImageProcessor.from_pretrained(tmp_path)(images=imgs, return_tensors="pt")["pixel_values"]
    ours = siglip.SiglipPreprocess.from_folder(tmp_path, 384)(images=imgs)["pixel_values"]
    assert ours.shape == ref.shape == (2, 3, 30, 20) and torch.equal(ours, ref)


def test_siglip_tower_matches_transformers_and_checks_the_file(tmp_path):
    from safetensors.torch import load_file, save_file
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    hf = SiglipVisionModel(SiglipVisionConfig(**TINY_SIGLIP)).eval()
    hf.save_pretrained(tmp_path / "s")
    ours = siglip.load_siglip_vision(tmp_path / "s")
    assert ours.config == siglip.SiglipVisionConfig(**TINY_SIGLIP)
    px = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        ref, out = hf(pixel_values=px), ours(pixel_values=px)
    assert out.pooler_output.shape == (3, 32) and out.last_hidden_state.shape == (3, 4, 32)
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() < 1e-5
    assert (out.pooler_output - ref.pooler_output).abs().max() < 1e-5
    assert (
        siglip.load_siglip_vision(tmp_path / "s", dtype=torch.bfloat16).vision_model.head.probe.dtype == torch.bfloat16
    )
    # the same weights as a pytorch_model.bin (read weights-only) give the same tower
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_bytes((tmp_path / "s" / "config.json").read_bytes())
    torch.save(hf.state_dict(), tmp_path / "b" / "pytorch_model.bin")
    with torch.no_grad():
        assert torch.equal(siglip.load_siglip_vision(tmp_path / "b")(pixel_values=px).pooler_output, out.pooler_output)
    # keys without the vision_model. prefix (SiglipVisionModel as transformers 5 saves it) give the same tower
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "config.json").write_bytes((tmp_path / "s" / "config.json").read_bytes())
    bare = {k.removeprefix("vision_model."): v.contiguous() for k, v in hf.state_dict().items()}
    assert not any(k.startswith("vision_model.") for k in bare) and len(bare) == len(hf.state_dict())
    save_file(bare, tmp_path / "u" / "model.safetensors")
    with torch.no_grad():
        assert torch.equal(siglip.load_siglip_vision(tmp_path / "u")(pixel_values=px).pooler_output, out.pooler_output)
    # a missing tensor, a wrong shape, no weights file: one line naming the file and the key
    weights_file = tmp_path / "s" / "model.safetensors"
    state = load_file(weights_file)
    key = "vision_model.encoder.layers.1.mlp.fc1.weight"
    save_file({k: v for k, v in state.items() if k != key}, weights_file)
    with pytest.raises(weights.GuardrailWeightsError, match=f"1 of the .* missing, first '{key}'"):
        siglip.load_siglip_vision(tmp_path / "s")
    save_file(dict(state, **{key: torch.zeros(3, 32)}), weights_file)
    with pytest.raises(
        weights.GuardrailWeightsError, match=rf"'{key}' has shape \(3, 32\), the SigLIP vision tower needs \(64, 32\)"
    ):
        siglip.load_siglip_vision(tmp_path / "s")
    weights_file.unlink()
    with pytest.raises(weights.GuardrailWeightsError, match="no SigLIP weights"):
        siglip.load_siglip_vision(tmp_path / "s")


def test_verdict_decides_whether_the_video_is_written(mp4, tmp_path):
    _, frames, fps = mp4
    face = face_blur.FaceDetector(tiny_retinaface())
    for bias_class, written in ((0, True), (2, False)):
        guard = VideoGuardrails(functools.partial(tiny_safety, bias_class), lambda: face)
        out_path = tmp_path / f"out_{bias_class}.mp4"
        # what `cosmos-ar generate` does with the result
        verdict, out = guard(frames, fps=fps)
        if out is not None:
            video_io.write_video(out_path, out, fps=fps)
        assert out_path.exists() == written == verdict.safe
    assert verdict.message == (
        "the video content safety filter flagged the generated video (Violence in 3 of 3 "
        "sampled frames, first at frame 0); it was not written"
    )
    assert [f.probability for f in verdict.frames] == pytest.approx([math.exp(4) / (math.exp(4) + 6)] * 3)


def test_offload_loads_per_call_and_frees(mp4):
    _, frames, fps = mp4
    loads = {"safety": 0, "face": 0}

    def load_safety():
        loads["safety"] += 1
        return tiny_safety(0)

    def load_face():
        loads["face"] += 1
        return face_blur.FaceDetector(tiny_retinaface())

    for offload, expected in ((True, 2), (False, 1)):
        loads.update(safety=0, face=0)
        guard = VideoGuardrails(load_safety, load_face, offload=offload)
        for _ in range(2):
            guard(frames[:9], fps=fps)
        assert loads == {"safety": expected, "face": expected}
        assert (guard.safety is None, guard.detector is None) == (offload, offload)


def test_background_load_is_waited_for_and_gives_the_same_result(mp4):
    _, frames, fps = mp4
    threads = []

    def loader(what, build):
        def load():
            threads.append((what, threading.current_thread().name))
            time.sleep(0.2)  # still loading when the first use comes: it must wait, not build a second copy
            return build()

        return load

    guard = VideoGuardrails(
        loader("safety", lambda: tiny_safety(0)), loader("face", lambda: face_blur.FaceDetector(tiny_retinaface()))
    )
    guard.start_loading()
    guard.start_loading()  # a second call starts nothing
    verdict, out = guard(frames, fps=fps)
    assert threads == [("safety", "cosmos-ar-guardrails"), ("face", "cosmos-ar-guardrails")]  # one load each
    ref_verdict, ref = VideoGuardrails(lambda: tiny_safety(0), lambda: face_blur.FaceDetector(tiny_retinaface()))(
        frames, fps=fps
    )
    assert verdict == ref_verdict and verdict.safe and torch.equal(out, ref)

    def bad():
        raise weights.GuardrailWeightsError("Resnet50_Final.pth: missing key body.conv1.weight")

    broken = VideoGuardrails(lambda: tiny_safety(0), bad)
    broken.start_loading()  # the thread's error is raised by the wait, in the caller
    with pytest.raises(weights.GuardrailWeightsError, match="^Resnet50_Final.pth: missing key body.conv1.weight$"):
        broken.load()
    offloaded = VideoGuardrails(bad, bad, offload=True)
    offloaded.start_loading()  # offloading: nothing is loaded ahead
    assert offloaded._loader is None


def test_warm_up_runs_every_shape_once_and_changes_nothing(mp4):
    _, frames, fps = mp4
    seen = {"face": [], "siglip": []}
    net, filt = tiny_retinaface(), tiny_safety(0)
    net.register_forward_pre_hook(lambda m, a: seen["face"].append(tuple(a[0].shape)))
    filt.encoder.register_forward_pre_hook(
        lambda m, a, k: seen["siglip"].append(tuple(k["pixel_values"].shape)), with_kwargs=True
    )
    guard = VideoGuardrails(lambda: filt, lambda: face_blur.FaceDetector(net, batch_size=8))
    guard.warm_up(33, 64, 96, fps=fps)
    # the sampled frames (0, 12, 24) in one SigLIP batch; the detector's full batch of 8 and the remainder of 1
    assert seen == {"face": [(1, 3, 64, 96), (8, 3, 64, 96)], "siglip": [(3, 3, 28, 28)]}
    verdict, out = guard(frames, fps=fps)
    ref_verdict, ref = VideoGuardrails(lambda: tiny_safety(0), lambda: face_blur.FaceDetector(tiny_retinaface()))(
        frames, fps=fps
    )
    assert verdict == ref_verdict and torch.equal(out, ref)
    assert VideoGuardrails(None, None, offload=True).warm_up(33, 64, 96) is None  # offloaded: nothing loaded


def test_pixelation_is_exactly_inside_the_boxes():
    gen = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (40, 60, 3), dtype=torch.uint8, generator=gen)
    boxes = [(5.2, 3.7, 20.1, 13.0), (50.5, 30.0, 75.0, 47.0), (10, 10, 10, 30)]  # fractional, clipped, empty
    out = face_blur.pixelate_boxes(frame, boxes, blocks=5)
    inside = torch.zeros(40, 60, dtype=torch.bool)
    inside[3:13, 5:21] = True  # x 5..21 (20.1 rounds up), y 3..13
    inside[30:40, 50:60] = True  # clipped to the frame
    assert torch.equal(out[~inside], frame[~inside])  # bit-exact outside
    assert not torch.equal(out[inside], frame[inside])
    assert torch.equal(frame, face_blur.pixelate_boxes(frame, [], 5))
    f = frame.numpy().astype(np.float64)
    for y0, y1, x0, x1 in ((3, 13, 5, 21), (30, 40, 50, 60)):
        ys = [y0 + (k * (y1 - y0)) // 5 for k in range(6)]
        xs = [x0 + (k * (x1 - x0)) // 5 for k in range(6)]
        for a, b in zip(ys, ys[1:]):
            for c, d in zip(xs, xs[1:]):
                cell = np.round(f[a:b, c:d].reshape(-1, 3).mean(0))  # half to even, as torch.round
                assert (out[a:b, c:d].numpy() == cell.astype(np.uint8)).all(), (a, b, c, d)
    tiny = face_blur.pixelate_boxes(frame, [(0, 0, 3, 2)], blocks=5)  # smaller than the grid: 2x3 cells of 1 px
    assert torch.equal(tiny, frame)


def test_blur_faces_uses_every_detection_and_keeps_type():
    frames = torch.randint(0, 256, (3, 32, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    det = face_blur.FaceDetector(tiny_retinaface())
    boxes = [
        torch.tensor([[2.0, 3.0, 12.0, 13.0, 0.9], [20.0, 5.0, 40.0, 30.0, 0.8]]),
        torch.zeros(0, 5),
        torch.tensor([[0.0, 0.0, 48.0, 32.0, 0.99]]),
    ]
    det.detect = lambda video: boxes
    out = face_blur.blur_faces(frames.numpy(), det)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    for t in range(3):
        assert np.array_equal(out[t], face_blur.pixelate_boxes(frames[t], boxes[t]).numpy())
    assert np.array_equal(out[1], frames[1].numpy())  # no face: untouched
    blurred = face_blur.blur_faces(frames, det)
    assert isinstance(blurred, torch.Tensor) and blurred is not frames and not torch.equal(blurred, frames)
    det.detect = lambda video: [torch.zeros(0, 5)] * 3  # no face anywhere: the input itself, not a copy
    assert face_blur.blur_faces(frames, det) is frames
    assert isinstance(face_blur.blur_faces(frames.numpy(), det), np.ndarray)


def test_priors_follow_the_anchor_formula():
    cfg = RetinaFaceConfig()
    p = retinaface.priors(50, 70, cfg)
    # levels: ceil(50/8) x ceil(70/8) = 7x9, 4x5, 2x3 cells, 2 anchors each
    assert p.shape == (2 * (63 + 20 + 6), 4)
    i, j, a = 2, 3, 1  # level 0, row 2, column 3, second anchor (32 px)
    assert p[(i * 9 + j) * 2 + a].tolist() == pytest.approx([3.5 * 8 / 70, 2.5 * 8 / 50, 32 / 70, 32 / 50])
    assert p[126].tolist() == pytest.approx([0.5 * 16 / 70, 0.5 * 16 / 50, 64 / 70, 64 / 50])  # level 1 starts
    assert p[-1].tolist() == pytest.approx([2.5 * 32 / 70, 1.5 * 32 / 50, 512 / 70, 512 / 50])
    # the network's output order is the priors' order
    loc, conf = tiny_retinaface()(torch.zeros(1, 3, 50, 70))
    assert loc.shape == (1, len(p), 4) and conf.shape == (1, len(p), 2)


def test_decode_with_variances():
    anchors = torch.tensor([[0.5, 0.5, 0.2, 0.1], [0.25, 0.75, 0.5, 0.5]])
    loc = torch.tensor([[1.0, -2.0, math.log(2) / 0.2, 0.0], [0.0, 0.0, 0.0, 0.0]])
    boxes = retinaface.decode(loc, anchors, (0.1, 0.2))
    # centre 0.5 + 1·0.1·0.2 = 0.52, 0.5 − 2·0.1·0.1 = 0.48; size 0.2·2 = 0.4, 0.1·1 = 0.1
    assert boxes.tolist() == [pytest.approx([0.32, 0.43, 0.72, 0.53]), pytest.approx([0.0, 0.5, 0.5, 1.0])]


def test_nms_greedy():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [6, 0, 16, 10], [100, 100, 110, 110.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    iou = retinaface.box_iou(boxes, boxes)
    assert iou[0, 1].item() == pytest.approx(90 / 110) and iou[0, 2].item() == pytest.approx(40 / 160)
    assert iou[1, 2].item() == pytest.approx(50 / 150)
    assert retinaface.nms(boxes, scores, 0.4).tolist() == [3, 0, 2]  # B overlaps A by 0.82 > 0.4: dropped
    assert retinaface.nms(boxes, scores, 0.85).tolist() == [3, 0, 1, 2]
    assert retinaface.nms(boxes[:0], scores[:0], 0.4).tolist() == []


def test_detect_preprocesses_decodes_thresholds_and_scales():
    net = tiny_retinaface()
    h, w = 32, 48
    anchors = retinaface.priors(h, w, TINY_FACE)
    n = len(anchors)
    loc = torch.zeros(1, n, 4)
    logits = torch.full((1, n, 2), 0.0)
    logits[0, :, 0] = 5.0  # background everywhere ...
    # prior 5: cell (0, 2), 32 px; prior 7: cell (0, 3), 32 px, overlapping 5; prior 46: cell (3, 5), 16 px, apart;
    # prior 40: under the 0.7 confidence
    for idx, score in ((5, 0.95), (7, 0.9), (46, 0.8), (40, 0.69)):
        logits[0, idx] = torch.tensor([0.0, math.log(score / (1 - score))])
    loc[0, 5] = torch.tensor([0.5, -0.5, 0.3, -0.2])
    seen = {}

    def fake_forward(x):
        seen["x"] = x
        return loc.expand(x.shape[0], -1, -1), logits.expand(x.shape[0], -1, -1)

    net.forward = fake_forward
    frame = torch.zeros(1, h, w, 3, dtype=torch.uint8)
    frame[0, 0, 0] = torch.tensor([10, 20, 30], dtype=torch.uint8)  # R, G, B
    (dets,) = face_blur.FaceDetector(net).detect(frame)
    assert seen["x"][0, :, 0, 0].tolist() == [30 - 104, 20 - 117, 10 - 123]  # BGR minus the BGR mean
    assert seen["x"][0, :, 1, 1].tolist() == [-104, -117, -123]
    # prior 5 decoded by hand: centre (20 + 0.5·0.1·32, 4 − 0.5·0.1·32) = (21.6, 2.4) px,
    # size 32·exp(0.3·0.2) x 32·exp(−0.2·0.2)
    bw, bh = 32 * math.exp(0.06), 32 * math.exp(-0.04)
    box5 = [21.6 - bw / 2, 2.4 - bh / 2, 21.6 + bw / 2, 2.4 + bh / 2, 0.95]
    box7 = torch.tensor([[12.0, -12.0, 44.0, 20.0]])
    assert retinaface.box_iou(torch.tensor([box5[:4]]), box7).item() == pytest.approx(0.6199, abs=1e-4)  # > 0.4
    assert dets.shape == (2, 5)  # 7 suppressed by NMS, 40 under the threshold
    assert dets[0].tolist() == pytest.approx(box5, abs=1e-4)
    assert dets[1].tolist() == pytest.approx([36.0, 20.0, 52.0, 36.0, 0.8], abs=1e-4)


def test_released_layout_loads_weights_only(tmp_path):
    src = tiny_retinaface(seed=3)
    path = tmp_path / "Resnet50_Final.pth"
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)  # DataParallel names, as released
    dst = weights.load_released_weights(tiny_retinaface(seed=4), path, what="face detector")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))

    clf = safety.SafetyClassifier(input_size=32)
    sf = tmp_path / "safety_filter.pt"
    torch.save({"model": clf.state_dict()}, sf)
    loaded = weights.load_released_weights(safety.SafetyClassifier(input_size=32), sf, what="classifier")
    assert torch.equal(loaded.network.layers[6].weight, clf.network.layers[6].weight)

    sd = dict(clf.state_dict())
    del sd["network.layers.4.running_var"]
    torch.save({"model": sd}, sf)
    with pytest.raises(weights.GuardrailWeightsError) as err:
        weights.load_released_weights(safety.SafetyClassifier(input_size=32), sf, what="video safety classifier")
    assert str(err.value) == (
        f"{sf}: 1 of the 16 tensors of the video safety classifier are missing, first 'network.layers.4.running_var'; "
        f"is this the right file? {weights.HINT}"
    )
    torch.save({"model": safety.SafetyClassifier(input_size=1152).state_dict()}, sf)
    with pytest.raises(weights.GuardrailWeightsError) as err:
        weights.load_released_weights(safety.SafetyClassifier(input_size=32), sf, what="video safety classifier")
    assert str(err.value) == (
        f"{sf}: 'network.layers.0.weight' has shape (512, 1152), the video safety classifier "
        f"needs (512, 32); is this the right file? {weights.HINT}"
    )
    torch.save({"model": sd, "note": weights.GuardrailWeightsError("x")}, sf)  # pickled object: refused
    with pytest.raises(weights.GuardrailWeightsError, match=r"not a weights-only PyTorch checkpoint"):
        weights.read_state_dict(sf)


def test_full_size_shapes():
    net = retinaface.retinaface_resnet50()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert sum(v.numel() for v in net.parameters()) == 27_293_600  # RetinaFace-ResNet50's published size
    assert shapes["body.layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    assert shapes["fpn.output1.0.weight"] == (256, 512, 1, 1)
    assert shapes["ssh3.conv7x7_3.0.weight"] == (64, 64, 3, 3)
    assert shapes["ClassHead.0.conv1x1.weight"] == (4, 256, 1, 1)
    assert shapes["LandmarkHead.2.conv1x1.weight"] == (20, 256, 1, 1)
    clf = {k: tuple(v.shape) for k, v in safety.SafetyClassifier().state_dict().items()}
    assert (clf["network.layers.0.weight"], clf["network.layers.6.weight"]) == ((512, 1152), (7, 256))


def test_released_siglip_folder_and_layout(tmp_path):
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(0)
    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)
    full = SiglipModel(SiglipConfig(vision_config=TINY_SIGLIP, text_config=text))
    root = tmp_path / "checkpoints"
    g = root / "Cosmos-Predict1-4B" / "guardrail"  # NVIDIA's layout: inside the model folder
    sig = g / "video_content_safety_filter" / "models--google--siglip-so400m-patch14-384" / "snapshots" / "abc"
    full.save_pretrained(sig)
    clf = safety.SafetyClassifier(input_size=32)
    torch.save({"model": clf.state_dict()}, g / paths.SAFETY_FILTER)
    (g / paths.FACE_DETECTOR).parent.mkdir(parents=True)
    torch.save(
        {f"module.{k}": v for k, v in retinaface.retinaface_resnet50().state_dict().items()}, g / paths.FACE_DETECTOR
    )
    files = paths.find_guardrail_files(root)
    assert files == paths.GuardrailFiles(g / paths.SAFETY_FILTER, g / paths.FACE_DETECTOR, sig)
    filt = safety.load_safety_filter(files.safety_filter, files.siglip_dir)
    x = torch.randint(0, 256, (2, 40, 56, 3), dtype=torch.uint8).numpy()
    with torch.no_grad():
        px = filt.processor(images=list(x), return_tensors="pt")["pixel_values"]
        ref = full.get_image_features(pixel_values=px)  # the vision tower of the full SigLIP checkpoint
    assert torch.allclose(filt.embed(x), ref / ref.norm(dim=-1, keepdim=True), atol=1e-6)
    guard = VideoGuardrails.from_checkpoint_dir(root, device="cpu", offload=True)
    verdict, out = guard(torch.from_numpy(x), fps=2)
    assert len(verdict.frames) == 2 and (out is None) == (not verdict.safe)


def _put_guardrail_files(g: Path) -> Path:
    for rel in (paths.SAFETY_FILTER, paths.FACE_DETECTOR):
        (g / rel).parent.mkdir(parents=True, exist_ok=True)
        (g / rel).write_bytes(b"x")
    return g


def _put_siglip(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "siglip"}')
    (folder / "model.safetensors").write_bytes(b"x")
    return folder


def test_guardrail_files_search_siglip_fallback_and_missing(tmp_path):
    root = tmp_path / "checkpoints"
    g4 = _put_guardrail_files(root / "Cosmos-Predict1-4B" / "guardrail")
    with pytest.raises(FileNotFoundError) as err:
        paths.find_guardrail_files(root)
    assert str(err.value) == (
        f"{g4 / paths.SAFETY_FILTER} has no SigLIP encoder next to it (a siglip config.json + weights under "
        f"{g4 / 'video_content_safety_filter'} or in {root / paths.SIGLIP_LOCAL}); {paths.HINT}"
    )
    # A later guardrail/ folder (sorted order) that has SigLIP wins over an earlier one without.
    gd = _put_guardrail_files(root / "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p" / "guardrail")
    sig_d = _put_siglip(gd / "video_content_safety_filter" / "siglip")
    assert paths.find_guardrail_files(root) == paths.GuardrailFiles(
        gd / paths.SAFETY_FILTER, gd / paths.FACE_DETECTOR, sig_d
    )
    # With SigLIP where `cosmos-ar download` puts it when the model repo has none, the first folder is complete.
    sig = _put_siglip(root / paths.SIGLIP_LOCAL)
    assert paths.find_guardrail_files(root) == paths.GuardrailFiles(
        g4 / paths.SAFETY_FILTER, g4 / paths.FACE_DETECTOR, sig
    )

    empty = tmp_path / "empty"
    (empty / "a" / "b" / "c" / "guardrail").mkdir(parents=True)  # four levels down: not searched
    with pytest.raises(FileNotFoundError) as err:
        paths.find_guardrail_files(empty)
    assert str(err.value) == (
        f"no guardrail weights ({paths.SAFETY_FILTER} and {paths.FACE_DETECTOR}) under {empty} (no guardrail/ folder "
        f"up to 3 levels down); {paths.HINT}"
    )
    (empty / "Cosmos-Predict1-4B" / "guardrail" / "aegis").mkdir(parents=True)  # text guardrails only
    with pytest.raises(FileNotFoundError) as err:
        paths.find_guardrail_files(empty)
    assert str(err.value) == (
        f"no guardrail weights ({paths.SAFETY_FILTER} and {paths.FACE_DETECTOR}) under {empty} (looked in "
        f"{empty}/Cosmos-Predict1-4B/guardrail); {paths.HINT}"
    )
