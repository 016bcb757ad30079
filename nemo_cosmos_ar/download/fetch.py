"""Plan and run the download: list each repo on the Hub, skip what is already verified, fetch the rest with
``huggingface_hub.snapshot_download``, then check MD5s.

Order of work, so that a failure leaves nothing that looks complete and a re-run continues where it stopped:

1. **Plan** every repo first (one listing call each, no file traffic). A repo whose required files are all on disk
   with the MD5s of ``catalog.MD5_CHECKSUMS`` is skipped without any network call. Files on disk with a wrong MD5
   are marked ``bad``. Nothing is written while planning, so ``--dry-run`` stops here.
2. **Disk check** against the bytes still to fetch.
3. **Fetch** per repo with ``snapshot_download(revision=<listed commit>, allow_patterns=<exact names>)``: resumable
   (huggingface_hub keeps a partial file as ``.cache/huggingface/download/*.incomplete`` and continues it with an HTTP
   Range request), authenticated by ``HF_TOKEN`` or the stored ``huggingface-cli login`` token.
4. **Verify** each fetched file that has an MD5; a mismatch is moved aside (``*.bad-md5-<md5>``) and reported.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nemo_cosmos_ar.download import catalog
from nemo_cosmos_ar.download.checksums import TABLE, hub_metadata_path, md5_file, move_aside
from nemo_cosmos_ar.download.errors import ChecksumMismatch, DownloadError, explain

Printer = Callable[[str], None]


@dataclass
class FileEntry:
    """One file of a repo. ``state``: ``fetch`` (absent), ``present`` (on disk with the listed size, no MD5 to check:
    huggingface_hub re-checks it against the listing), ``verified`` (MD5 matches, not requested at all), ``bad`` (on
    disk with a wrong MD5: moved aside, then fetched)."""

    name: str
    size: int | None
    state: str
    md5: str | None = None  # the actual MD5 when computed


@dataclass
class RepoPlan:
    spec: catalog.RepoSpec
    local_dir: Path
    commit: str | None  # None: skipped without listing (all required files verified)
    files: list[FileEntry] = field(default_factory=list)

    @property
    def to_fetch(self) -> list[FileEntry]:
        return [f for f in self.files if f.state in ("fetch", "bad")]

    @property
    def bytes_to_fetch(self) -> int:
        return sum(f.size or 0 for f in self.to_fetch)


def format_size(n: int | None) -> str:
    if n is None:
        return "size ?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The Hub URL: the argument, else HF_ENDPOINT (read now, not at import as huggingface_hub's constant is), else
    huggingface_hub's default."""
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def have_token() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


def _offline_verified(spec: catalog.RepoSpec, local: Path, checksums: dict[str, str]) -> RepoPlan | None:
    """A plan that skips the repo when every required file has an MD5 in the table and matches it."""
    entries = []
    for name in spec.required:
        expected = checksums.get(f"{spec.local_dir}/{name}")
        path = local / name
        if expected is None or not path.is_file():
            return None
        actual = md5_file(path)
        if actual != expected.lower():
            return None
        entries.append(FileEntry(name, path.stat().st_size, "verified", actual))
    return RepoPlan(spec, local, None, entries)


def plan_repo(spec: catalog.RepoSpec, root: Path, checksums: dict[str, str], api, endpoint: str) -> RepoPlan:
    """List ``spec`` on the Hub (unless verified offline) and mark each wanted file fetch / present / verified / bad."""
    from huggingface_hub.utils import filter_repo_objects

    local = root / spec.local_dir
    skipped = _offline_verified(spec, local, checksums)
    if skipped is not None:
        return skipped
    try:
        info = api.model_info(spec.repo_id, revision=spec.revision, files_metadata=True)
    except Exception as err:  # noqa: BLE001 - every Hub/transport error becomes one actionable line
        raise explain(err, spec.repo_id, endpoint, have_token()) from err
    siblings = {s.rfilename: s for s in info.siblings or []}
    wanted = list(filter_repo_objects(list(siblings), allow_patterns=list(spec.allow_patterns)))
    missing = [r for r in spec.required if r not in siblings]
    if missing:
        raise DownloadError(
            f"{spec.repo_id}@{info.sha[:8]} has no {missing[0]} on the Hub, but cosmos-predict1 "
            f"reads {local / missing[0]}: the repo layout changed; please report it"
        )
    plan = RepoPlan(spec, local, info.sha)
    for name in wanted:
        size = siblings[name].size
        path = local / name
        expected = checksums.get(f"{spec.local_dir}/{name}")
        if not path.is_file():
            plan.files.append(FileEntry(name, size, "fetch"))
        elif expected is not None:
            actual = md5_file(path)
            plan.files.append(FileEntry(name, size, "verified" if actual == expected.lower() else "bad", actual))
        else:
            plan.files.append(FileEntry(name, size, "present" if path.stat().st_size == size else "fetch"))
    return plan


def _carries_siglip(plan: RepoPlan) -> bool:
    """True when a model repo's guardrail folder brings a SigLIP config (else the public SigLIP repo is fetched)."""
    if plan.commit is None:  # verified offline, no listing: judge by what is on disk
        found = (plan.local_dir / catalog.GUARDRAIL_DIR).rglob("config.json")
        names = (p.relative_to(plan.local_dir).as_posix() for p in found)
    else:
        names = (f.name for f in plan.files)
    return any(catalog.is_siglip_config(n) for n in names)


def plan_all(specs: list[catalog.RepoSpec], root: Path, checksums: dict[str, str], endpoint: str) -> list[RepoPlan]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint)
    plans = [plan_repo(spec, root, checksums, api, endpoint) for spec in specs]
    with_guardrail = [p for p in plans if p.spec.carries_guardrail]
    if with_guardrail and not any(_carries_siglip(p) for p in with_guardrail):
        plans.append(plan_repo(catalog.SIGLIP_FALLBACK, root, checksums, api, endpoint))
    return plans


def describe_plan(plans: list[RepoPlan], root: Path, out: Printer) -> None:
    notes = {
        "fetch": "fetch",
        "bad": "fetch (MD5 on disk is wrong: moved aside first)",
        "present": "present",
        "verified": "present, MD5 ok",
    }
    for plan in plans:
        where = f"{plan.local_dir}"
        if plan.commit is None:
            out(f"{plan.spec.repo_id} -> {where}: all required files present with the right MD5, skipped")
            continue
        out(f"{plan.spec.repo_id}@{plan.commit[:8]} -> {where} ({plan.spec.what})")
        for f in plan.files:
            out(f"  {notes[f.state]:<48} {f.name}  {format_size(f.size)}")
    total = sum(p.bytes_to_fetch for p in plans)
    count = sum(len(p.to_fetch) for p in plans)
    out(f"to fetch: {count} files, {format_size(total)} into {root}")


def free_bytes(path: Path) -> int:
    """Free space on the file system that will hold ``path`` (its nearest existing parent)."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk(plans: list[RepoPlan], root: Path) -> None:
    need = sum(p.bytes_to_fetch for p in plans)
    free = free_bytes(root)
    if need > free:
        raise DownloadError(
            f"not enough disk space under {root}: the download needs {format_size(need)} and "
            f"{format_size(free)} is free; free some space or pass another --checkpoint-dir"
        )


def fetch_repo(plan: RepoPlan, root: Path, checksums: dict[str, str], endpoint: str, out: Printer) -> None:
    from huggingface_hub import snapshot_download

    spec = plan.spec
    for f in plan.files:
        if f.state == "bad":
            moved = move_aside(plan.local_dir / f.name, f.md5 or "", plan.local_dir, f.name)
            out(f"moved aside {moved} (MD5 {f.md5}, expected {checksums[f'{spec.local_dir}/{f.name}']})")
        elif f.state == "fetch" and (plan.local_dir / f.name).is_file():
            # On disk with the wrong size: forget huggingface_hub's record of it, which would otherwise make the
            # client trust the file for this commit without asking the server.
            hub_metadata_path(plan.local_dir, f.name).unlink(missing_ok=True)
    # Exact names (escaped for fnmatch), not the spec's patterns: verified files are left out, and the listing
    # these names come from is the commit being fetched.
    names = [f.name for f in plan.files if f.state != "verified"]
    if names:
        try:
            snapshot_download(
                spec.repo_id,
                revision=plan.commit,
                local_dir=plan.local_dir,
                endpoint=endpoint,
                allow_patterns=[glob.escape(n) for n in names],
            )
        except Exception as err:  # noqa: BLE001
            raise explain(err, spec.repo_id, endpoint, have_token()) from err
    for f in plan.files:
        expected = checksums.get(f"{spec.local_dir}/{f.name}")
        path = plan.local_dir / f.name
        if f.state == "verified" or expected is None or not path.is_file():
            continue
        actual = md5_file(path)
        if actual != expected.lower():
            moved = move_aside(path, actual, plan.local_dir, f.name)
            raise ChecksumMismatch(
                f"checksum mismatch: {path} has MD5 {actual}, expected {expected}; moved it to {moved.name}. Run the "
                f"same command again to fetch it again; if it repeats, the MD5 table ({TABLE}) may be out of date"
            )
    for name in spec.required:
        if not (plan.local_dir / name).is_file():
            raise DownloadError(
                f"{spec.repo_id}: {plan.local_dir / name} is missing after the download; run the same command again"
            )


def download(
    model_sizes: list[str],
    checkpoint_dir: str | Path = "checkpoints",
    *,
    diffusion_decoder: bool = True,
    guardrail: bool = True,
    dry_run: bool = False,
    checksums: dict[str, str] | None = None,
    endpoint: str | None = None,
    out: Printer = print,
) -> list[RepoPlan]:
    """Fetch the checkpoints for ``model_sizes`` into ``checkpoint_dir`` (see the module docstring).

    Args:
        model_sizes: ``["4B"]``, ``["4B", "12B"]``; Video2World sizes are refused.
        checkpoint_dir: root folder (cosmos-predict1's ``--checkpoint_dir``).
        diffusion_decoder: also fetch the 7B diffusion decoder and the CV8x8x8 tokenizer it decodes into.
        guardrail: also fetch the video guardrail weights.
        dry_run: list what would be fetched and its size; write nothing.
        checksums: MD5 table (default ``catalog.MD5_CHECKSUMS``).
        endpoint: Hub URL (default HF_ENDPOINT or https://huggingface.co).
        out: where progress lines go.

    Returns:
        The plans (what was, or for a dry run would be, fetched).

    Raises:
        ValueError: a refused model size. DownloadError (a ValueError): any problem a user can act on, one line.
    """
    specs = catalog.repos_for(model_sizes, diffusion_decoder=diffusion_decoder, guardrail=guardrail)
    root = Path(checkpoint_dir)
    checksums = catalog.MD5_CHECKSUMS if checksums is None else checksums
    endpoint = resolve_endpoint(endpoint)
    plans = plan_all(specs, root, checksums, endpoint)
    describe_plan(plans, root, out)
    if dry_run:
        out("dry run: nothing was written")
        return plans
    check_disk(plans, root)
    for plan in plans:
        if plan.commit is not None:
            fetch_repo(plan, root, checksums, endpoint, out)
    out(f"done: {', '.join(p.spec.repo_id for p in plans)} in {root}")
    return plans
