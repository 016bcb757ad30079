"""Input validation shared by every ``cosmos-ar`` command and the library functions behind them (no NeMo, no torch
at import time).

The rules (issue 18): a bad input gives one line that names the file, key or option, the value, what is allowed and
how to fix it; nothing is written or deleted before validation passes; an output that is, contains or lies inside
an input is refused; with ``--overwrite`` the new output is built beside the old one and swapped in at the end; a
Ctrl-C or SIGTERM removes partial outputs and exits 130 / 143 with one line.

What is here, each usable from any command (``generate`` included):

* ``UserError``: the exception for all of the above; a ``ValueError``, so ``cosmos-ar``'s ``main`` prints it as
  ``cosmos-ar <command>: error: <message>`` and exits 1.
* numbers and choices: ``check_int``, ``check_float``, ``check_choice``; ``check_fields`` checks a dict read from
  JSON against a table of ``Field`` rules (``MODEL_CONFIG_FIELDS`` is the one for ``CosmosARConfig``).
* paths: ``check_no_overlap`` (output vs inputs, through symlinks), ``check_writable`` (a real probe, so it also
  catches read-only mounts and ``chattr +i``), ``topmost_missing`` (what to remove again if a run fails).
* devices and packages: ``check_device`` (cpu, cuda, cuda:N, against what this machine has),
  ``check_any_package`` (a missing library named as such, before any work).
* ``guard(command)``: the context a command's ``run`` executes in (signals -> exit 130 / 143 with one line,
  stray ``OSError`` -> one line naming the file).
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping


class UserError(ValueError):
    """A bad input: the message is one line that names the problem and the fix; never shown with a traceback."""


# ---------------------------------------------------------------------------------------------------------------
# Numbers, choices, typed config fields
# ---------------------------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    # bool is an int subclass, and a JSON ``true`` must not pass as a layer count (numpy ints are Integral too)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _interval(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return "finite"


def check_int(value: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]``; a float (even 2.0), bool or string is refused."""
    if not _is_int(value):
        raise UserError(f"{name} must be an integer {_interval(lo, hi)}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise UserError(f"{name} must be an integer {_interval(lo, hi)}, got {value}")
    return int(value)


def check_float(
    value: Any,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite float in the given interval; ints are accepted, NaN/inf/bool/strings are not."""
    ok_type = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if ok_type else math.nan
    bad = not ok_type or not math.isfinite(v)
    bad = bad or (lo is not None and (v <= lo if lo_open else v < lo))
    bad = bad or (hi is not None and (v >= hi if hi_open else v > hi))
    if bad:
        raise UserError(f"{name} must be a finite number {_interval(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        raise UserError(f"{name} {value!r} is not one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Field:
    """How one config field is checked: ``kind`` is int, float, bool or ints3 (three positive ints)."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False


def check_fields(d: Any, rules: Mapping[str, Field], source: str) -> dict:
    """Check the fields of ``d`` (read from JSON) that ``rules`` names; returns ``d`` as a dict. Fields that are
    absent or null are left to the caller (defaults, "missing field" errors)."""
    if not isinstance(d, Mapping):
        raise UserError(
            f'{source}: expected a JSON object of fields (e.g. {{"n_layers": 16, ...}}), got a '
            f"{type(d).__name__}; fix or replace the file"
        )
    for key, rule in rules.items():
        value = d.get(key)
        if value is None:
            continue
        where = f"{source}: {key}"
        if rule.kind == "int":
            check_int(value, where, rule.lo, rule.hi)
        elif rule.kind == "float":
            check_float(value, where, rule.lo, rule.hi, lo_open=rule.lo_open, hi_open=rule.hi_open)
        elif rule.kind == "bool":
            if not isinstance(value, bool):
                raise UserError(f"{where} must be true or false, got {value!r}")
        elif rule.kind == "ints3":
            if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_int(x) and x >= 1 for x in value):
                raise UserError(f"{where} must be three positive integers [T, H, W], got {value!r}")
        else:  # pragma: no cover -- a rule table bug
            raise AssertionError(rule.kind)
    return dict(d)


# cosmos-predict1 ModelConfig fields (config.json). Bounds are wide sanity limits, far beyond any released model.
MODEL_CONFIG_FIELDS: dict[str, Field] = {
    "n_layers": Field("int", 1, 1024),
    "dim": Field("int", 1, 65536),
    "n_heads": Field("int", 1, 1024),
    "n_kv_heads": Field("int", 1, 1024),
    "head_dim": Field("int", 6, 4096),
    "ffn_hidden_size": Field("int", 1, 1 << 20),
    "vocab_size": Field("int", 1, 1 << 24),
    "norm_eps": Field("float", 0, 1, lo_open=True, hi_open=True),
    "rope_theta": Field("float", 0, lo_open=True),
    "apply_yarn": Field("bool"),
    "yarn_scale": Field("float", 0, lo_open=True),
    "yarn_beta_fast": Field("float", 0, lo_open=True),
    "yarn_beta_slow": Field("float", 0, lo_open=True),
    "video_latent_shape": Field("ints3"),
    "latent_shape": Field("ints3"),
    "original_latent_shape": Field("ints3"),
}

# Clip sides in pixels. The DV8x16x16 tokenizer was trained at 720p; 4096 covers 4K video and refuses
# sizes (16k, 200 megapixels) whose tokenizer activations could not fit any GPU.
MAX_SIDE = 4096


def check_resolution(h: Any, w: Any, name: str = "--resolution") -> tuple[int, int]:
    for side in (h, w):
        if not _is_int(side) or side < 16 or side > MAX_SIDE or side % 16:
            raise UserError(
                f"{name} {h}x{w}: height and width must be multiples of 16 in [16, {MAX_SIDE}] (e.g. 384x640, 640x1024)"
            )
    return int(h), int(w)


# ---------------------------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------------------------
def _real(p: str | Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(p))))


def check_no_overlap(
    output: str | Path, inputs: Iterable[tuple[str, str | Path | None]], output_name: str = "--output"
) -> None:
    """Refuse an ``output`` that is, contains or lies inside any input (compared through symlinks).

    ``inputs`` are ``(name, path)`` pairs (``None`` paths are skipped), e.g. ``[("--source", src)]``; the names
    appear in the message. A file written inside an input folder, or a folder replaced around an input, would
    destroy that input on ``--overwrite`` or change it under the run.
    """
    out = _real(output)
    for name, path in inputs:
        if path is None:
            continue
        src = _real(path)
        if out == src:
            rel = "is"
        elif out in src.parents:
            rel = "contains"
        elif src in out.parents:
            rel = "lies inside"
        else:
            continue
        raise UserError(
            f"{output_name} {output} {rel} the input {name} {path}; write the output somewhere else "
            "(outputs never replace or sit inside their inputs)"
        )


def topmost_missing(path: str | Path) -> Path | None:
    """The highest ancestor of ``path`` (or ``path`` itself) that does not exist: what creating ``path`` with
    ``mkdir(parents=True)`` adds, so a failed run can remove exactly that again."""
    p = Path(os.path.abspath(os.path.expanduser(str(path))))
    top = None
    while not (p.exists() or p.is_symlink()):
        top, p = p, p.parent
    return top


def writable_problem(path: str | Path, inside: bool = False) -> str | None:
    """Why ``path`` cannot be written (None if it can): the nearest existing folder above it (or ``path`` itself
    with ``inside=True``, for a folder written into) must be a writable folder. Probes with a real file, removed
    again, so read-only mounts and immutable folders are caught too (``os.access`` misses both for root)."""
    p = Path(os.path.abspath(os.path.expanduser(str(path))))
    base = p if inside and p.exists() else p.parent
    while not (base.exists() or base.is_symlink()):
        base = base.parent
    if not base.is_dir():
        return f"{base} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".cosmos-ar-write-test-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"{base} is not writable ({e.strerror or type(e).__name__})"
    return None


def check_writable(path: str | Path, name: str = "--output", inside: bool = False) -> None:
    """``writable_problem`` as a ``UserError`` naming the option."""
    why = writable_problem(path, inside)
    if why:
        raise UserError(f"{name} {path}: {why}; choose a writable location or fix its permissions")


def check_exists(path: str | Path | None, name: str, kind: str = "any") -> Path:
    """``path`` must exist (``kind``: any, file or dir)."""
    if path is None or str(path) == "":
        raise UserError(f"{name} is required")
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise UserError(f"{name} {path} does not exist")
    if kind == "file" and not p.is_file():
        raise UserError(f"{name} {path} is a folder; pass a file")
    if kind == "dir" and not p.is_dir():
        raise UserError(f"{name} {path} is not a folder")
    return p


# ---------------------------------------------------------------------------------------------------------------
# Dependencies
# ---------------------------------------------------------------------------------------------------------------
def check_any_package(modules: Iterable[str], purpose: str, install: str) -> str:
    """The first of ``modules`` that is installed; else a ``UserError`` naming the missing package, so a missing
    library is not reported as a bad input file (checked before the expensive work)."""
    import importlib.util

    modules = list(modules)
    for m in modules:
        if importlib.util.find_spec(m) is not None:
            return m
    raise UserError(
        f"{purpose} needs the Python package {' or '.join(modules)}, which is not installed here; "
        f"install it ({install})"
    )


# ---------------------------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------------------------
def check_device(device: str | None, name: str = "--device") -> str | None:
    """``cpu``, ``cuda`` or ``cuda:N``, checked against the GPUs this process sees; None stays None (auto)."""
    if device is None:
        return None
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise UserError(f"{name} {device!r} is not a device this command can use; pass cpu, cuda or cuda:N")
    if kind == "cuda":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise UserError(
                f"{name} {device}: no CUDA GPU is visible to this process (torch {torch.__version__}, "
                f"{build}); use {name} cpu or run on a GPU machine"
            )
        if index and int(index) >= n:
            raise UserError(f"{name} {device}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    return text


# ---------------------------------------------------------------------------------------------------------------
# Running a command: signals and stray OS errors
# ---------------------------------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """Raised in the main thread on SIGINT/SIGTERM (a KeyboardInterrupt, so every cleanup path already runs)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM: the shell's convention


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` in the main thread; later signals are ignored until the block
    exits, so the cleanup of partial outputs is not cut short by an impatient second Ctrl-C."""
    sigs = (signal.SIGINT, signal.SIGTERM)
    try:
        old = {s: signal.getsignal(s) for s in sigs}

        def handler(signum, frame):
            for s in sigs:
                signal.signal(s, signal.SIG_IGN)
            raise Interrupted(signum)

        for s in sigs:
            signal.signal(s, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


_OS_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EROFS: "write to a writable file system",
    errno.EACCES: "fix the permissions or choose another path",
    errno.EPERM: "fix the permissions or choose another path",
}


@contextlib.contextmanager
def guard(command: str, resume: str | None = None) -> Iterator[None]:
    """Run a command's body: on SIGINT/SIGTERM print one line (``resume`` says how to continue a resumable job)
    and exit 130/143; an ``OSError`` that escaped the checks becomes a one-line ``UserError`` naming the file.

    Partial outputs are removed by the code that creates them (``atomic_outputs`` and friends clean up on any
    ``BaseException``), which has run by the time the interrupt reaches this context.
    """
    try:
        with interrupts_raise():
            yield
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        code = 128 + int(signum)
        what = resume or "partial outputs were removed; inputs are unchanged"
        print(f"cosmos-ar {command}: interrupted ({signal.Signals(signum).name}); {what}", file=sys.stderr)
        raise SystemExit(code) from None
    except (FileNotFoundError, FileExistsError):
        raise  # main prints these as they are
    except OSError as e:
        where = e.filename or "a file"
        why = e.strerror or str(e) or type(e).__name__
        hint = _OS_HINTS.get(e.errno or 0, "check the path")
        raise UserError(f"cannot access {where}: {why}; {hint}") from None
