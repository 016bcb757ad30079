"""What ``cosmos-ar download`` fetches and where it puts it: the Hub repos as data, plus the MD5 table.

Layout (cosmos-predict1 ``scripts/download_autoregressive_checkpoints.py`` at 4ed35fa): every Cosmos repo lands in
``<checkpoint_dir>/<repo name without "nvidia/">``, e.g. ``checkpoints/Cosmos-Predict1-4B/model.pt``; the inference
code finds the tokenizers and the diffusion decoder under those exact names.

Guardrails: there is no separate guardrail repo. Each AR model repo carries a ``guardrail/`` folder (NVIDIA fetches it
with the pattern ``guardrail/*``), so the weights land in ``checkpoints/Cosmos-Predict1-4B/guardrail/``, where
cosmos-predict1 finds them by a recursive search for a ``guardrail/`` folder (so does ``guardrails.paths``). NVIDIA
publishes the MD5 of ``<model>/guardrail/video_content_safety_filter/safety_filter.pt`` (``checksums.PUBLISHED_MD5``).
Of that folder only ``video_content_safety_filter/`` and ``face_blur_filter/`` are fetched: those are the two video
guardrails the base models run. ``aegis/`` (LlamaGuard-7b + adapter) and ``blocklist/`` screen text prompts, which
only the Video2World models take, so they are left out. ``--no-guardrail`` drops the two patterns. With several
sizes each model folder gets its own copy, as with NVIDIA's script; the 7B decoder repo's ``guardrail/`` copy is not
fetched (one next to the model is enough).

NOT IN THE REFERENCE: whether the model repo's ``guardrail/video_content_safety_filter/`` holds the SigLIP encoder
(cosmos-predict1 loads ``google/siglip-so400m-patch14-384`` with that folder as its Hugging Face cache). When the
listing has no ``config.json`` there, ``google/siglip-so400m-patch14-384`` (public, not gated) is fetched into
``checkpoints/google/siglip-so400m-patch14-384`` instead (the repo id as the path, as cosmos-predict1 does for its
non-Cosmos repos such as ``google-t5/t5-11b``), where ``guardrails.paths`` looks next.

Left out on purpose: ``google-t5/t5-11b`` (upstream fetches it even for 4B, but only the Video2World models read it)
and the 5B/13B Video2World repos (refused by ``check_model_sizes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nemo_cosmos_ar.download.checksums import PUBLISHED_MD5

# Model size -> repo. Only the base (video-conditioned) models: the project cannot run Video2World yet.
AR_MODEL_REPOS: dict[str, str] = {
    "4B": "nvidia/Cosmos-Predict1-4B",
    "12B": "nvidia/Cosmos-Predict1-12B",
}
VIDEO2WORLD_SIZES: dict[str, str] = {
    "5B": "nvidia/Cosmos-Predict1-5B-Video2World",
    "13B": "nvidia/Cosmos-Predict1-13B-Video2World",
}
SIGLIP_REPO = "google/siglip-so400m-patch14-384"

# The video guardrails inside each model repo (see the module docstring); the file names are the ones
# guardrails.paths opens (SAFETY_FILTER, FACE_DETECTOR there; tests/test_download.py checks they agree).
GUARDRAIL_DIR = "guardrail/"
GUARDRAIL_PATTERNS = (GUARDRAIL_DIR + "video_content_safety_filter/*", GUARDRAIL_DIR + "face_blur_filter/*")
GUARDRAIL_REQUIRED = (
    GUARDRAIL_DIR + "video_content_safety_filter/safety_filter.pt",
    GUARDRAIL_DIR + "face_blur_filter/Resnet50_Final.pth",
)

# MD5 of released files, keyed by path relative to --checkpoint-dir (NVIDIA's published values, one table in
# checksums.py). A file listed there that is already on disk with this MD5 is not fetched again (no network call at
# all when a repo's required files all match), and a fetched file that does not match is moved aside and reported.
# Files without an entry are still checked by huggingface_hub (size, and the LFS SHA-256 when it finds a file without
# its own download metadata).
MD5_CHECKSUMS = PUBLISHED_MD5


@dataclass(frozen=True)
class RepoSpec:
    """One Hub repo to fetch.

    Attributes:
        repo_id: ``owner/name`` on the Hub.
        local_dir: folder relative to the checkpoint dir.
        allow_patterns: fnmatch patterns over the repo's file paths (``*`` also matches ``/``, as in
            huggingface_hub's filter).
        required: files that must be in the listing and on disk afterwards (what the inference code opens).
        gated: the repo needs a token and a licence click-through (all NVIDIA Cosmos repos are gated).
        what: a few words for messages.
    """

    repo_id: str
    local_dir: str
    allow_patterns: tuple[str, ...]
    required: tuple[str, ...]
    gated: bool = True
    what: str = ""
    revision: str = field(default="main")

    @property
    def carries_guardrail(self) -> bool:
        return any(p.startswith(GUARDRAIL_DIR) for p in self.allow_patterns)


def _cosmos_dir(repo_id: str) -> str:
    return repo_id.split("/", 1)[1]


def model_repo(size: str, *, guardrail: bool = True) -> RepoSpec:
    """The AR model repo of ``size``; with ``guardrail`` also its video guardrail folders."""
    repo = AR_MODEL_REPOS[size]
    # Upstream's pattern list also has "mean_std.pt" and "*.jit" (one list for all its repos); the AR model reads
    # neither, and "guardrail/*" is narrowed to the two video guardrails (module docstring).
    if not guardrail:
        return RepoSpec(
            repo,
            _cosmos_dir(repo),
            ("model.pt", "config.json", "README.md"),
            ("model.pt",),
            what=f"{size} autoregressive model",
        )
    return RepoSpec(
        repo,
        _cosmos_dir(repo),
        ("model.pt", "config.json", "README.md", *GUARDRAIL_PATTERNS),
        ("model.pt", *GUARDRAIL_REQUIRED),
        what=f"{size} autoregressive model, video guardrails",
    )


TOKENIZER_REPOS: tuple[RepoSpec, ...] = (
    RepoSpec(
        "nvidia/Cosmos-Tokenize1-DV8x16x16-720p",
        "Cosmos-Tokenize1-DV8x16x16-720p",
        ("*.jit", "config.json", "README.md"),
        ("encoder.jit", "decoder.jit"),
        what="discrete video tokenizer",
    ),
    RepoSpec(
        "nvidia/Cosmos-Tokenize1-CV8x8x8-720p",
        "Cosmos-Tokenize1-CV8x8x8-720p",
        ("*.jit", "mean_std.pt", "config.json", "README.md"),
        ("encoder.jit", "decoder.jit", "mean_std.pt"),
        what="continuous video tokenizer (diffusion decoder latents)",
    ),
)

DIFFUSION_DECODER_REPO = RepoSpec(
    "nvidia/Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p",
    "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p",
    # aux_vars.pt holds the generic prompt embedding the decoder is conditioned on; a missing one is the
    # FileNotFoundError of cosmos-predict1 issue #111, hence "required".
    ("model.pt", "aux_vars.pt", "config.json", "README.md"),
    ("model.pt", "aux_vars.pt"),
    what="7B diffusion decoder",
)

# NOT IN THE REFERENCE: fetched only when no model repo's guardrail listing carries a SigLIP config (fetch.plan_all).
SIGLIP_FALLBACK = RepoSpec(
    SIGLIP_REPO,
    SIGLIP_REPO,
    ("config.json", "model.safetensors", "preprocessor_config.json"),
    ("config.json", "model.safetensors"),
    gated=False,
    what="SigLIP image encoder of the safety filter",
)


def is_siglip_config(name: str) -> bool:
    """A ``config.json`` anywhere under the model repo's ``guardrail/video_content_safety_filter/`` (a plain folder
    or the Hugging Face cache form ``models--google--siglip-so400m-patch14-384/snapshots/<hash>/``)."""
    base = GUARDRAIL_PATTERNS[0].removesuffix("*")
    return name.startswith(base) and (name == base + "config.json" or name.endswith("/config.json"))


def normalize_size(text: str) -> str:
    """``4b`` / ``4B`` -> ``4B``; also accepts the Video2World names so that they can be refused by name."""
    size = text.strip().upper().removeprefix("COSMOS-PREDICT1-")
    return size.removesuffix("-VIDEO2WORLD")


def check_model_sizes(sizes: list[str]) -> list[str]:
    """Normalize and validate ``--model-sizes``; refuse Video2World and unknown sizes before anything is fetched."""
    out: list[str] = []
    for text in sizes:
        size = normalize_size(text)
        if size in VIDEO2WORLD_SIZES:
            raise ValueError(
                f"--model-sizes {text}: {VIDEO2WORLD_SIZES[size]} is a text-conditioned Video2World model, which "
                f"nemo_cosmos_ar cannot run yet (no T5 encoder, no cross-attention); nothing was downloaded. "
                f"Choose from {', '.join(AR_MODEL_REPOS)}"
            )
        if size not in AR_MODEL_REPOS:
            raise ValueError(f"--model-sizes {text}: unknown model size; choose from {', '.join(AR_MODEL_REPOS)}")
        if size not in out:
            out.append(size)
    if not out:
        raise ValueError(f"--model-sizes: give at least one of {', '.join(AR_MODEL_REPOS)}")
    return out


def repos_for(
    sizes: list[str], *, tokenizers: bool = True, diffusion_decoder: bool = True, guardrail: bool = True
) -> list[RepoSpec]:
    """The repos a run of ``cosmos-ar download`` fetches, in order (models with their guardrails, tokenizers,
    decoder); the SigLIP fallback is decided later, from the model repos' listings."""
    specs = [model_repo(s, guardrail=guardrail) for s in check_model_sizes(sizes)]
    if tokenizers:
        specs += list(TOKENIZER_REPOS) if diffusion_decoder else [TOKENIZER_REPOS[0]]
    if diffusion_decoder:
        specs.append(DIFFUSION_DECODER_REPO)
    return specs
