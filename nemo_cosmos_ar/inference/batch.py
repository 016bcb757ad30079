"""Batch mode of ``cosmos-ar generate``: a jsonl of inputs -> one video per line, several prompts decoded together.

Each line is a JSON object. Field names are cosmos-predict1's where it has one (its ``--batch_input_path`` files hold
``{"visual_input": path}``); the others are optional:

* ``visual_input`` (or ``input``): the image or video;
* ``seed``: this line's seed (default ``--seed``); each video equals the single run with that seed;
* ``video_save_name`` (a name, ``.mp4`` added) or ``output`` (a file name or path): where it goes, relative to the
  output folder; default ``{index}.mp4`` as cosmos-predict1 names batch outputs (index = 0-based line index);
* ``num_input_frames``: 1 or 9 for this line's video (default ``--num-input-frames``).

A line that cannot be used (bad JSON, a missing file, a clash of output names, an undecodable video ...) is reported
with its line number and skipped; the others are written. So is a video the content safety filter flags (with
guardrails on): it is not written, its line is reported. Prompts of the same length (images: 1 latent frame,
9-frame videos: 2) are decoded ``batch_size`` at a time, each row with its own seeded generator, under one progress
bar. With the diffusion decoder on, each video is decoded by its own call seeded with its line's seed (one batched
call would draw every row's noise from one generator), so every video equals its single run. Each video's MP4 is
encoded on a writer thread while the next video generates (``writer.BackgroundWriter``); every video generated is
written, or its line reported, before the call returns. Under torchrun rank 0 reads the jsonl and the inputs and
broadcasts what every rank needs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch

from nemo_cosmos_ar.guardrails.weights import GuardrailWeightsError
from nemo_cosmos_ar.inference import checks
from nemo_cosmos_ar.inference import generator as gen
from nemo_cosmos_ar.inference.options import IMAGE_SUFFIXES, GenerateOptions, Job, check_common, check_job_paths
from nemo_cosmos_ar.inference.pipeline import OUTPUT_FPS, DiffusionDecoderError, Runner
from nemo_cosmos_ar.inference.ranks import broadcast
from nemo_cosmos_ar.inference.writer import BackgroundWriter, save_outputs
from nemo_cosmos_ar.tokenizer import grid

INPUT_KEYS = ("visual_input", "input")


@dataclass
class BatchResult:
    """Lines written (line number, output) and lines skipped (line number, reason), in file order."""

    written: list[tuple[int, Path]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    skipped_existing: list[tuple[int, Path]] = field(default_factory=list)
    stats: list[gen.DecodeStats] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        tokens = sum(s.batch * s.generated_tokens for s in self.stats)
        secs = sum(s.decode_s for s in self.stats)
        return tokens / secs if secs > 0 else float("nan")


def _line_job(obj, index: int, line: int, jsonl: Path, folder: Path, opts: GenerateOptions) -> Job:
    if not isinstance(obj, dict):
        raise ValueError(f'expected a JSON object like {{"visual_input": "clip.mp4"}}, got {type(obj).__name__}')
    src = next((obj[k] for k in INPUT_KEYS if k in obj), None)
    if not isinstance(src, str) or not src:
        raise ValueError('no input: give the image or video as "visual_input"')
    path = Path(src).expanduser()
    if not path.is_absolute() and not path.exists() and (jsonl.parent / path).exists():
        path = jsonl.parent / path  # relative to the jsonl when not relative to the working folder
    seed = obj.get("seed", opts.seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f'"seed" must be an integer in [0, 2**63), got {seed!r}')
    frames = obj.get("num_input_frames", opts.num_input_frames)
    if frames not in gen.SUPPORTED_INPUT_FRAMES or isinstance(frames, bool):
        raise ValueError(f'"num_input_frames" must be 1 or 9, got {frames!r}')
    name = obj.get("output", obj.get("video_save_name"))
    if name is None:
        out = folder / f"{index}.mp4"
    elif not isinstance(name, str) or not name.strip() or name.endswith(("/", "\\")):
        raise ValueError(f"the output name must be a file name, got {name!r}")
    else:
        out = Path(name) if "output" in obj else Path(name + ".mp4")
        out = out if out.is_absolute() else folder / out
    if path.suffix.lower() in IMAGE_SUFFIXES:
        frames = 1
    tokens = None if opts.save_tokens is None else opts.save_tokens / (out.stem + ".pt")
    return Job(line, path, out, tokens, int(seed), int(frames))


def read_jobs(jsonl: Path, folder: Path, opts: GenerateOptions, skip_existing: bool = False):
    """``(jobs, failures, existing)`` for the lines of ``jsonl``; blank lines are ignored."""
    try:
        text = jsonl.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"--batch-input-path {jsonl} is not a text (jsonl) file") from None
    except OSError as err:
        raise FileNotFoundError(f"--batch-input-path {jsonl} cannot be read ({err.strerror})") from None
    jobs: list[Job] = []
    failed: list[tuple[int, str]] = []
    existing: list[tuple[int, Path]] = []
    taken: dict[Path, int] = {}
    index = 0
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise ValueError(f"not valid JSON ({err.msg} at column {err.colno})") from None
            job = _line_job(obj, index, line, jsonl, folder, opts)
            key = Path(job.output).absolute()
            if key in taken:
                raise ValueError(
                    f'writes {job.output}, as line {taken[key]} does; give one of them another "video_save_name"'
                )
            taken[key] = line
            if skip_existing and job.output.exists():
                existing.append((line, job.output))
            else:
                check_job_paths(opts, job)
                jobs.append(job)
        except (ValueError, FileNotFoundError, FileExistsError) as err:
            failed.append((line, str(err)))
        index += 1
    if not jobs and not failed and not existing:
        raise ValueError(
            f"--batch-input-path {jsonl} has no lines; write one JSON object per line, e.g. "
            '{"visual_input": "clip.mp4"}'
        )
    return jobs, failed, existing


def _chunks(jobs: list[Job], size: int) -> list[list[Job]]:
    """Jobs of equal prompt length, ``size`` at a time, in file order of their first line."""
    groups: dict[int, list[Job]] = {}
    for j in jobs:
        groups.setdefault(gen.prompt_latent_frames(j.num_input_frames), []).append(j)
    out = [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]
    return sorted(out, key=lambda c: c[0].line)


def generate_batch(
    opts: GenerateOptions, jsonl: Path, folder: Path, *, skip_existing: bool = False, report=None
) -> BatchResult:
    """Generate one video per usable line of ``jsonl`` into ``folder`` (see the module doc).

    Args:
        opts: the shared settings (``input``/``output``/``save_tokens`` of ``opts`` are not used; ``save_tokens``, if
            set, is a folder that gets ``<video name>.pt`` per line).
        report: called as ``report(line, message)`` for each skipped line as it is found (default: print to stderr).
    """
    report = report or (lambda line, msg: print(f"cosmos-ar generate: line {line}: {msg}; skipped", file=sys.stderr))
    check_common(opts)
    checks.check_dependencies(reads_video=True)
    runner = Runner(opts)
    rank, world = runner.rank, runner.world
    result = BatchResult()
    listing = None
    if rank == 0:
        try:
            listing = read_jobs(jsonl, folder, opts, skip_existing)
            if listing[0]:
                runner.load_guardrails()
                runner.load_diffusion_decoder()
        except Exception as err:
            listing = err
    listing = runner.distribute(listing)
    if isinstance(listing, Exception):
        raise listing
    jobs, failed, result.skipped_existing = listing
    for line, msg in failed:
        if rank == 0:
            report(line, msg)
    result.failed.extend(failed)
    chunks = _chunks(jobs, opts.batch_size)
    writes = BackgroundWriter()  # video k's MP4 is encoded while video k+1 generates
    for j in chunks[0] if chunks else []:  # read while the AR model loads
        runner.prefetch_input(j)
    if not opts.offload_ar_model and jobs:
        runner.load_engine()
    bar = None
    if rank == 0 and opts.progress and jobs:
        from tqdm import tqdm

        per_job = grid.tokens_per_clip(runner.grid)
        total = sum(per_job - grid.prompt_tokens(j.num_input_frames, runner.grid) for j in jobs)
        bar = tqdm(total=total, unit="tok", desc="generating", dynamic_ncols=True)
    try:
        for i, chunk in enumerate(chunks):
            ready = None
            if rank == 0:
                ready = _prompts(runner, chunk, bar, result, report, last=i == len(chunks) - 1)
            ready = broadcast(ready, rank, world)
            if not ready[0]:
                continue
            good, prompts = ready
            for j in chunks[i + 1] if i + 1 < len(chunks) else []:  # the next chunk's inputs, read meanwhile
                runner.prefetch_input(j)
            grids, stats = runner.generate(prompts, [j.seed for j in good], bar=bar or False)
            result.stats.append(stats)
            if rank == 0:
                for j, tokens in zip(good, grids):
                    try:
                        frames = runner.render(j, tokens[None])
                    except (GuardrailWeightsError, DiffusionDecoderError):  # the run's weights, not this line: stop
                        raise
                    except (ValueError, FileExistsError, OSError) as err:
                        result.failed.append((j.line, str(err)))
                        report(j.line, str(err))
                        continue
                    save = partial(save_outputs, j, tokens[None], frames, OUTPUT_FPS, opts.overwrite)
                    _saved(writes.submit(j, save), runner, result, report)
                if opts.offload_tokenizer:
                    runner.drop_tokenizer()
            else:  # rank 1 of a guidance split runs its half of each video's decode (elsewhere: nothing)
                for j, tokens in zip(good, grids):
                    runner.decode_partner(j, tokens[None])
    finally:
        if bar is not None:
            bar.close()
        _saved(writes.close(), runner, result, report)  # every video generated is written (or reported)
    result.failed.sort()
    result.seconds = runner.seconds
    return result


def _saved(done, runner: Runner, result: BatchResult, report) -> None:
    """Account for finished writes (``BackgroundWriter``): the written ones, the failed ones reported by line; an
    unexpected error is raised here, on the main thread."""
    for j, err, seconds in done:
        runner.seconds["write"] += seconds
        if err is None:
            result.written.append((j.line, j.output))
        elif isinstance(err, (ValueError, FileExistsError, OSError)):
            result.failed.append((j.line, str(err)))
            report(j.line, str(err))
        else:
            raise err


def _prompts(runner: Runner, chunk: list[Job], bar, result: BatchResult, report, last: bool = False):
    """Rank 0: the prompts of a chunk; a job whose input cannot be read is reported and dropped. The tokenizer is
    dropped after each chunk when offloading, after the last one when the diffusion decoder does the decoding."""
    good, rows = [], []
    for j in chunk:
        try:
            rows.append(runner.prompt(replace(j)))
            good.append(j)
        except (ValueError, FileNotFoundError, OSError) as err:
            result.failed.append((j.line, str(err)))
            report(j.line, str(err))
            if bar is not None:
                cfg = runner.ckpt.cfg
                bar.total -= cfg.seq_length - grid.prompt_tokens(j.num_input_frames, cfg.latent_shape)
                bar.refresh()
    if runner.opts.offload_tokenizer or (last and runner.dd is not None):
        runner.drop_tokenizer(collect=runner.opts.offload_tokenizer)
    return (good, torch.cat(rows) if rows else None)
