"""``cosmos-ar download`` against a fake Hub on 127.0.0.1 (tests/hub_server.py): the real huggingface_hub client
code runs (listing, snapshot_download, HEAD/GET with Range), nothing leaves the machine. Each test checks the files
on disk afterwards and the exact message a user would read."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import FakeHub, closed_port_url
from nemo_cosmos_ar.download import catalog, fetch
from nemo_cosmos_ar.download.checksums import hub_metadata_path, md5_file
from nemo_cosmos_ar.download.errors import ChecksumMismatch, DownloadError, explain
from nemo_cosmos_ar.guardrails import paths

REPO = Path(__file__).resolve().parents[1]
M4B = "nvidia/Cosmos-Predict1-4B"
TOKENIZER_DV = "nvidia/Cosmos-Tokenize1-DV8x16x16-720p"


def _blob(seed: str, size: int) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return bytes(out[:size])


GUARDRAIL_FILES = {  # NVIDIA's layout: the guardrails inside each model repo (and the 7B decoder repo)
    "guardrail/video_content_safety_filter/safety_filter.pt": _blob("sf", 900),
    "guardrail/face_blur_filter/Resnet50_Final.pth": _blob("rf", 1100),
    "guardrail/aegis/adapter_model.bin": _blob("aegis", 800),  # text guardrails: left out
    "guardrail/blocklist/custom/x": b"bad",
}


def _repos() -> dict[str, dict[str, bytes]]:
    """Every repo the real catalog names, with small files; a few files the allow-patterns must leave out."""
    return {
        M4B: {
            "model.pt": _blob("4b", 200_000),
            "config.json": b'{"dim": 4096}',
            "README.md": b"# 4B",
            "extra/big.safetensors": _blob("x", 1000),
            **GUARDRAIL_FILES,
        },
        TOKENIZER_DV: {
            "encoder.jit": _blob("dve", 3000),
            "decoder.jit": _blob("dvd", 4000),
            "autoencoder.jit": _blob("dva", 5000),
            "README.md": b"dv",
        },
        "nvidia/Cosmos-Tokenize1-CV8x8x8-720p": {
            "encoder.jit": _blob("cve", 3000),
            "decoder.jit": _blob("cvd", 3000),
            "autoencoder.jit": _blob("cva", 100),
            "mean_std.pt": b"ms",
        },
        catalog.DIFFUSION_DECODER_REPO.repo_id: {
            "model.pt": _blob("dd", 7000),
            "aux_vars.pt": _blob("aux", 500),
            "notes.txt": b"left out",
            **GUARDRAIL_FILES,
        },
        catalog.SIGLIP_REPO: {
            "config.json": b'{"model_type": "siglip"}',
            "model.safetensors": _blob("sig", 1200),
            "preprocessor_config.json": b"{}",
            "tokenizer.json": b"{}",
        },
    }


def _md5s(repos: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """MD5 table in catalog.MD5_CHECKSUMS form, computed from the served files."""
    dirs = {s.repo_id: s.local_dir for s in (*catalog.repos_for(["4B"]), catalog.SIGLIP_FALLBACK)}
    return {f"{dirs[r]}/{n}": hashlib.md5(d).hexdigest() for r, files in repos.items() for n, d in files.items()}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running fake Hub with every catalog repo gated (except SigLIP), the client pointed at it, HF_HOME in
    tmp_path, a granted token in HF_TOKEN, and 16 KiB download chunks (so that a cut leaves a partial file)."""
    from huggingface_hub import constants

    server = FakeHub(_repos(), gated={r for r in _repos() if r.startswith("nvidia/")}).start()
    home = tmp_path / "hf_home"
    for k, v in {
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": "hf_granted",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }.items():
        monkeypatch.setenv(k, v)
    # huggingface_hub read these at import time: point the in-process client at the same places. (Not ENDPOINT:
    # URL templates were built from it at import; the code under test passes endpoint= explicitly.)
    for k, v in {
        "HF_HUB_OFFLINE": False,
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "DOWNLOAD_CHUNK_SIZE": 16 * 1024,
        "HF_HUB_ENABLE_HF_TRANSFER": False,
    }.items():
        monkeypatch.setattr(constants, k, v, raising=False)
    yield server
    server.stop()


def _run(root: Path, *, sizes=("4B",), checksums=None, lines=None, **kw):
    return fetch.download(
        list(sizes),
        root,
        checksums={} if checksums is None else checksums,
        out=(lines.append if lines is not None else (lambda s: None)),
        **kw,
    )


def _files(root: Path) -> set[str]:
    """Every file under root except huggingface_hub's .cache bookkeeping."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts}


def _incomplete(root: Path) -> list[Path]:
    return sorted(root.rglob("*.incomplete"))


EXPECTED_4B = (
    {"Cosmos-Predict1-4B/" + n for n in ("model.pt", "config.json", "README.md", *catalog.GUARDRAIL_REQUIRED)}
    | {"Cosmos-Tokenize1-DV8x16x16-720p/" + n for n in ("encoder.jit", "decoder.jit", "autoencoder.jit", "README.md")}
    | {"Cosmos-Tokenize1-CV8x8x8-720p/" + n for n in ("encoder.jit", "decoder.jit", "autoencoder.jit", "mean_std.pt")}
    | {"Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p/" + n for n in ("model.pt", "aux_vars.pt")}
    | {
        "google/siglip-so400m-patch14-384/" + n
        for n in ("config.json", "model.safetensors", "preprocessor_config.json")
    }
)


def test_fresh_download_layout_and_checksums(hub, tmp_path):
    root = tmp_path / "checkpoints"
    repos = _repos()
    lines: list[str] = []
    _run(root, checksums=_md5s(repos), lines=lines)
    # cosmos-predict1's folder names, the video guardrails inside the model folder; allow-patterns left the rest out
    assert _files(root) == EXPECTED_4B
    dirs = {s.repo_id: s.local_dir for s in (*catalog.repos_for(["4B"]), catalog.SIGLIP_FALLBACK)}
    for rel in EXPECTED_4B:
        repo = next(r for r, d in dirs.items() if rel.startswith(d + "/"))
        assert (root / rel).read_bytes() == repos[repo][rel[len(dirs[repo]) + 1 :]], rel
    assert _incomplete(root) == []
    # one GET per fetched file, none for the left-out ones
    gets = [r.path for r in hub.log if r.method == "GET" and "/resolve/" in r.path]
    assert len(gets) == len(EXPECTED_4B) == 18
    assert not any(x in p for p in gets for x in ("aegis", "blocklist", "big.safetensors", "notes.txt"))
    # the decoder repo's guardrail/ copy is not fetched: the model folder's one is enough
    assert not any("guardrail" in r.path for r in hub.requests_for(catalog.DIFFUSION_DECODER_REPO.repo_id))
    # no SigLIP in the model repo's guardrail listing, so the public SigLIP repo came last
    assert list(dirs)[-1] == catalog.SIGLIP_REPO and (root / catalog.SIGLIP_REPO / "model.safetensors").is_file()
    assert lines[-1] == f"done: {', '.join(list(dirs)[:-1])}, {catalog.SIGLIP_REPO} in {root}"
    # the guardrail loader finds what the download wrote
    g = root / "Cosmos-Predict1-4B" / "guardrail"
    assert paths.find_guardrail_files(root) == paths.GuardrailFiles(
        g / paths.SAFETY_FILTER, g / paths.FACE_DETECTOR, root / catalog.SIGLIP_REPO
    )
    # The same command again: every required file (guardrails included) matches its MD5, and SigLIP's absence from
    # the model folder is judged on disk, so nothing at all is requested.
    hub.log.clear()
    lines.clear()
    _run(root, checksums=_md5s(repos), lines=lines)
    assert hub.log == [] and _files(root) == EXPECTED_4B
    assert lines[-2] == f"to fetch: 0 files, 0 B into {root}"
    assert sum(x.endswith("all required files present with the right MD5, skipped") for x in lines) == 5


def test_dry_run_lists_files_and_sizes_writes_nothing(hub, tmp_path):
    root = tmp_path / "checkpoints"
    lines: list[str] = []
    plans = _run(root, dry_run=True, diffusion_decoder=False, guardrail=False, lines=lines)
    assert [p.spec.repo_id for p in plans] == [M4B, TOKENIZER_DV]  # no CV8x8x8 without the diffusion decoder
    # --no-guardrail: the model repo's guardrail/ files are not listed (and no SigLIP fallback is planned)
    assert [f.name for f in plans[0].files] == ["README.md", "config.json", "model.pt"]
    sha = hub.sha(M4B)[:8]
    assert lines[0] == f"{M4B}@{sha} -> {root}/Cosmos-Predict1-4B (4B autoregressive model)"
    assert f"  {'fetch':<48} model.pt  200.00 kB" in lines
    assert f"  {'fetch':<48} config.json  13 B" in lines
    assert lines[-2] == f"to fetch: 7 files, {fetch.format_size(200_000 + 13 + 4 + 3000 + 4000 + 5000 + 2)} into {root}"
    assert lines[-1] == "dry run: nothing was written"
    assert not root.exists()
    assert all("/api/models/" in r.path for r in hub.log)  # listings only, no file traffic


def test_interrupted_file_resumes_with_range(hub, tmp_path):
    root = tmp_path / "checkpoints"
    data = _repos()[M4B]["model.pt"]
    hub.cut[(M4B, "model.pt")] = 100_000  # the connection dies after 100 kB of 200 kB
    kw = dict(diffusion_decoder=False, guardrail=False, checksums={"Cosmos-Predict1-4B/model.pt": md5_file_bytes(data)})
    with pytest.raises(DownloadError) as err:
        _run(root, **kw)
    assert str(err.value) == (
        f"the connection to {hub.url} was cut while downloading {M4B} (a file arrived incomplete): run the same "
        "command again; finished files are kept and the partial file resumes"
    )
    model = root / "Cosmos-Predict1-4B" / "model.pt"
    assert not model.exists()  # nothing looks complete
    (partial,) = _incomplete(root)
    have = partial.stat().st_size
    assert 0 < have <= 100_000  # what arrived before the cut is kept
    assert partial.read_bytes() == data[:have]
    hub.log.clear()
    _run(root, **kw)  # the same command again
    assert model.read_bytes() == data and _incomplete(root) == []
    (get,) = [r for r in hub.requests_for(M4B, "GET") if r.path.endswith("/model.pt")]
    assert get.range == f"bytes={have}-"  # resumed, not restarted


def md5_file_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_files_with_matching_md5_are_not_requested(hub, tmp_path):
    root = tmp_path / "checkpoints"
    repos = _repos()
    # Files put in place by hand (no huggingface_hub records): the MD5 alone must make them count as complete.
    model = root / "Cosmos-Predict1-4B" / "model.pt"
    encoder = root / "Cosmos-Tokenize1-DV8x16x16-720p" / "encoder.jit"
    for path, data in ((model, repos[M4B]["model.pt"]), (encoder, repos[TOKENIZER_DV]["encoder.jit"])):
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    stamps = (model.stat().st_mtime_ns, encoder.stat().st_mtime_ns)
    lines: list[str] = []
    _run(root, checksums=_md5s(repos), diffusion_decoder=False, guardrail=False, lines=lines)
    # 4B: its one required file is verified -> no request at all, not even the listing (config.json and
    # README.md are optional and stay unfetched, as with NVIDIA's script).
    assert hub.requests_for(M4B) == []
    assert lines[0] == f"{M4B} -> {root}/Cosmos-Predict1-4B: all required files present with the right MD5, skipped"
    # DV tokenizer: decoder.jit is missing -> listed and fetched, but encoder.jit is never requested.
    assert f"  {'present, MD5 ok':<48} encoder.jit  3.00 kB" in lines
    fetched = sorted(r.path.rsplit("/", 1)[1] for r in hub.requests_for(TOKENIZER_DV, "GET") if "/resolve/" in r.path)
    assert fetched == ["README.md", "autoencoder.jit", "decoder.jit"]
    assert not any(r.path.endswith("/encoder.jit") for r in hub.log)
    assert (model.stat().st_mtime_ns, encoder.stat().st_mtime_ns) == stamps
    assert _files(root) == {"Cosmos-Predict1-4B/model.pt"} | {
        f"Cosmos-Tokenize1-DV8x16x16-720p/{n}" for n in ("encoder.jit", "decoder.jit", "autoencoder.jit", "README.md")
    }


def test_checksum_mismatch_moves_the_file_aside(hub, tmp_path):
    root = tmp_path / "checkpoints"
    data = _repos()[M4B]["model.pt"]
    wrong = "0" * 32
    kw = dict(diffusion_decoder=False, guardrail=False)
    with pytest.raises(ChecksumMismatch) as err:
        _run(root, checksums={"Cosmos-Predict1-4B/model.pt": wrong}, **kw)
    local = root / "Cosmos-Predict1-4B"
    actual = md5_file_bytes(data)
    moved = local / f"model.pt.bad-md5-{actual[:8]}"
    assert str(err.value) == (
        f"checksum mismatch: {local / 'model.pt'} has MD5 {actual}, expected {wrong}; moved it to {moved.name}. Run "
        "the same command again to fetch it again; if it repeats, the MD5 table (nemo_cosmos_ar/download/checksums.py "
        "PUBLISHED_MD5) may be out of date"
    )
    assert not (local / "model.pt").exists() and moved.read_bytes() == data
    assert not hub_metadata_path(local, "model.pt").exists()  # huggingface_hub's record is gone too
    # With the right MD5 the next run fetches it again (nothing left over is trusted).
    hub.log.clear()
    _run(root, checksums={"Cosmos-Predict1-4B/model.pt": actual}, **kw)
    assert (local / "model.pt").read_bytes() == data
    assert [r.range for r in hub.requests_for(M4B, "GET") if r.path.endswith("/model.pt")] == [None]


def test_bad_file_on_disk_is_moved_aside_and_fetched(hub, tmp_path):
    root = tmp_path / "checkpoints"
    data = _repos()[M4B]["model.pt"]
    local = root / "Cosmos-Predict1-4B"
    local.mkdir(parents=True)
    (local / "model.pt").write_bytes(data[:-1] + b"!")  # same size, one byte off: only the MD5 can tell
    bad = md5_file(local / "model.pt")
    lines: list[str] = []
    _run(
        root,
        checksums={"Cosmos-Predict1-4B/model.pt": md5_file_bytes(data)},
        diffusion_decoder=False,
        guardrail=False,
        lines=lines,
    )
    assert (local / "model.pt").read_bytes() == data
    assert (local / f"model.pt.bad-md5-{bad[:8]}").read_bytes() == data[:-1] + b"!"
    assert f"moved aside {local}/model.pt.bad-md5-{bad[:8]} (MD5 {bad}, expected {md5_file_bytes(data)})" in lines


def test_401_without_token_names_login_and_licence(hub, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    root = tmp_path / "checkpoints"
    with pytest.raises(DownloadError) as err:
        _run(root, diffusion_decoder=False, guardrail=False)
    assert str(err.value) == (
        f"{M4B} is gated and no Hugging Face token was sent: create a Read token at "
        "https://huggingface.co/settings/tokens, run `huggingface-cli login` (or `hf auth login`) or set HF_TOKEN, and "
        f"accept the licence at {hub.url}/{M4B}"
    )
    heads = hub.requests_for(M4B, "HEAD")
    assert heads and all(r.token is None for r in heads)
    assert _files(root) == set() and _incomplete(root) == []
    assert [r for r in hub.requests_for(TOKENIZER_DV) if "/resolve/" in r.path] == []  # stopped at the first repo


def test_401_rejected_token(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_expired")
    root = tmp_path / "checkpoints"
    with pytest.raises(DownloadError) as err:
        _run(root, diffusion_decoder=False, guardrail=False)
    assert str(err.value) == (
        f"the Hugging Face token was rejected (401 invalid credentials) for {M4B}: create a new Read token at "
        "https://huggingface.co/settings/tokens and run `huggingface-cli login` (or `hf auth login`) or set HF_TOKEN "
        "(HF_TOKEN overrides a stored login)"
    )
    assert not root.exists() and len(hub.log) == 1  # failed at the first listing


def test_stored_login_token_is_used(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    Path(constants.HF_TOKEN_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(constants.HF_TOKEN_PATH).write_text("hf_granted")  # what `huggingface-cli login` writes
    _run(tmp_path / "c", diffusion_decoder=False, guardrail=False)
    assert (tmp_path / "c" / "Cosmos-Predict1-4B" / "model.pt").is_file()
    assert {r.token for r in hub.log if "/resolve/" in r.path} == {"hf_granted"}


def test_offline_mode_message():
    from huggingface_hub.errors import OfflineModeIsEnabled

    assert str(explain(OfflineModeIsEnabled("offline"), M4B, "https://huggingface.co", True)) == (
        "HF_HUB_OFFLINE=1 is set, so nothing can be downloaded: unset it (or set HF_HUB_OFFLINE=0) and run the same "
        "command again"
    )


def _cli(hub: FakeHub, tmp_path: Path, *args: str, token: str = "hf_granted") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "cli_hf_home"),
        HF_HUB_OFFLINE="0",
        HF_TOKEN=token,
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        PYTHONPATH=str(REPO),
        PYTHONWARNINGS="ignore",
        OMP_NUM_THREADS="1",
    )
    cmd = [sys.executable, "-m", "nemo_cosmos_ar.cli", "download", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_cli_gated_403_one_line(hub, tmp_path):
    args = ["--model_sizes", "4B", "--checkpoint_dir", "ckpts", "--no-diffusion-decoder", "--no-guardrail"]
    proc = _cli(hub, tmp_path, *args, token="hf_not_granted")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"cosmos-ar download: error: {M4B} is gated and your Hugging Face account has not been granted access: "
        f"accept the licence at {hub.url}/{M4B} (logged in as the token's owner), then run the same command again"
    )
    assert "Traceback" not in proc.stderr
    assert [r.token for r in hub.requests_for(M4B, "HEAD")][:1] == ["hf_not_granted"]
    assert _files(tmp_path / "ckpts") == set() and _incomplete(tmp_path / "ckpts") == []


def test_cli_default_md5_table_rejects_other_content(hub, tmp_path):
    # The fake 4B model.pt is not NVIDIA's file: the built-in table's MD5 for it must catch that.
    proc = _cli(
        hub, tmp_path, "--model-sizes", "4b", "--checkpoint-dir", "ckpts", "--no_diffusion_decoder", "--no_guardrail"
    )
    assert proc.returncode == 1
    local = tmp_path / "ckpts" / "Cosmos-Predict1-4B"
    actual = md5_file_bytes(_repos()[M4B]["model.pt"])
    assert proc.stderr.strip().splitlines()[-1] == (
        f"cosmos-ar download: error: checksum mismatch: ckpts/Cosmos-Predict1-4B/model.pt has MD5 {actual}, expected "
        f"{catalog.MD5_CHECKSUMS['Cosmos-Predict1-4B/model.pt']}; moved it to model.pt.bad-md5-{actual[:8]}. Run the "
        "same command again to fetch it again; if it repeats, the MD5 table (nemo_cosmos_ar/download/checksums.py "
        "PUBLISHED_MD5) may be out of date"
    )
    kept = ["README.md", "config.json", f"model.pt.bad-md5-{actual[:8]}"]
    assert sorted(p.name for p in local.iterdir() if p.is_file()) == kept


def test_no_network_one_line(hub, tmp_path, monkeypatch):
    dead = closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", dead)
    with pytest.raises(DownloadError) as err:
        _run(tmp_path / "c", diffusion_decoder=False, guardrail=False)
    assert str(err.value) == (
        f"lost or no connection to {dead} while downloading {M4B} (ConnectionError): check the network or proxy "
        "(HTTPS_PROXY), then run the same command again; finished files are kept and a partial file resumes"
    )
    assert not (tmp_path / "c").exists()


def test_disk_space_checked_before_any_file_traffic(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "free_bytes", lambda path: 1000)
    root = tmp_path / "checkpoints"
    with pytest.raises(DownloadError) as err:
        _run(root, diffusion_decoder=False, guardrail=False)
    need = fetch.format_size(
        sum(len(_repos()[M4B][n]) for n in ("model.pt", "config.json", "README.md"))
        + sum(len(d) for d in _repos()[TOKENIZER_DV].values())
    )
    assert str(err.value) == (
        f"not enough disk space under {root}: the download needs {need} and 1.00 kB is free; "
        "free some space or pass another --checkpoint-dir"
    )
    assert not root.exists() and all("/api/models/" in r.path for r in hub.log)


def test_disk_full_during_write_message():
    err = OSError(28, "No space left on device")
    assert str(explain(err, M4B, "https://huggingface.co", True)) == (
        f"disk full while downloading {M4B} (No space left on device): free some space or pass another "
        "--checkpoint-dir, then run the same command again to resume"
    )


def test_siglip_in_the_model_repo_needs_no_fallback(hub, tmp_path):
    vcsf = "guardrail/video_content_safety_filter/"
    # A preprocessor config alone is no SigLIP: the public SigLIP repo is still planned.
    hub.repos[M4B][vcsf + "preprocessor_config.json"] = b"{}"
    plans = _run(tmp_path / "c", dry_run=True, diffusion_decoder=False)
    assert [p.spec.repo_id for p in plans] == [M4B, TOKENIZER_DV, catalog.SIGLIP_REPO]
    # SigLIP in Hugging Face cache form inside the guardrail folder (how cosmos-predict1 caches it): fetched with the
    # model repo, no fallback.
    snap = vcsf + "models--google--siglip-so400m-patch14-384/snapshots/abc/"
    hub.repos[M4B] |= {snap + "config.json": b'{"model_type": "siglip"}', snap + "model.safetensors": b"w"}
    plans = _run(tmp_path / "c", dry_run=True, diffusion_decoder=False)
    assert [p.spec.repo_id for p in plans] == [M4B, TOKENIZER_DV]
    assert [f.name for f in plans[0].files] == [
        "README.md",
        "config.json",
        *catalog.GUARDRAIL_REQUIRED[1:],
        snap + "config.json",
        snap + "model.safetensors",
        vcsf + "preprocessor_config.json",
        catalog.GUARDRAIL_REQUIRED[0],
        "model.pt",
    ]
    assert not catalog.is_siglip_config("guardrail/aegis/config.json")


def test_layout_agrees_with_the_md5_table_and_the_guardrail_loader():
    # Each published MD5 names a file that `cosmos-ar download` writes at exactly that path.
    from huggingface_hub.utils import filter_repo_objects

    specs = catalog.repos_for(["4B", "12B"])
    for key in catalog.MD5_CHECKSUMS:
        spec = next(s for s in specs if key.startswith(s.local_dir + "/"))
        name = key[len(spec.local_dir) + 1 :]
        assert list(filter_repo_objects([name], allow_patterns=list(spec.allow_patterns))) == [name], key
    assert "Cosmos-Predict1-12B/" + catalog.GUARDRAIL_REQUIRED[0] in catalog.MD5_CHECKSUMS
    # The files the loader opens are the ones the download requires.
    assert catalog.GUARDRAIL_REQUIRED == ("guardrail/" + paths.SAFETY_FILTER, "guardrail/" + paths.FACE_DETECTOR)


@pytest.mark.parametrize("size", ["5B", "13b", "5B-Video2World", "Cosmos-Predict1-13B-Video2World"])
def test_video2world_sizes_refused(size):
    with pytest.raises(ValueError) as err:
        catalog.check_model_sizes(["4B", size])
    repo = catalog.VIDEO2WORLD_SIZES[catalog.normalize_size(size)]
    assert str(err.value) == (
        f"--model-sizes {size}: {repo} is a text-conditioned Video2World model, which nemo_cosmos_ar cannot run yet "
        "(no T5 encoder, no cross-attention); nothing was downloaded. Choose from 4B, 12B"
    )


def test_model_sizes_and_cli_spellings():
    from nemo_cosmos_ar.cli import build_parser

    assert catalog.check_model_sizes(["4b", "12B", "4B"]) == ["4B", "12B"]
    with pytest.raises(ValueError, match=r"^--model-sizes 7B: unknown model size; choose from 4B, 12B$"):
        catalog.check_model_sizes(["7B"])
    for argv in (
        ["--model-sizes", "4B", "12B", "--checkpoint-dir", "x", "--dry-run"],
        ["--model_sizes", "4B", "12B", "--checkpoint_dir", "x", "--dry_run"],
    ):
        a = build_parser().parse_args(["download", *argv])
        parsed = (a.model_sizes, a.checkpoint_dir, a.dry_run, a.diffusion_decoder, a.guardrail)
        assert parsed == (["4B", "12B"], "x", True, True, True)
    specs = catalog.repos_for(["12B"], diffusion_decoder=False)
    assert [s.local_dir for s in specs] == ["Cosmos-Predict1-12B", "Cosmos-Tokenize1-DV8x16x16-720p"]
    assert specs[0].allow_patterns == (
        "model.pt",
        "config.json",
        "README.md",
        "guardrail/video_content_safety_filter/*",
        "guardrail/face_blur_filter/*",
    )
    no_guard = catalog.repos_for(["12B"], diffusion_decoder=False, guardrail=False)[0]
    assert (no_guard.allow_patterns, no_guard.required) == (("model.pt", "config.json", "README.md"), ("model.pt",))


def test_md5_is_streamed_in_chunks(tmp_path):
    data = _blob("md5", 100_003)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    for chunk in (7, 4096, 1 << 20):  # smaller than, and larger than, the file
        assert md5_file(p, chunk=chunk) == hashlib.md5(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert md5_file(tmp_path / "empty") == "d41d8cd98f00b204e9800998ecf8427e"
