"""Turn what huggingface_hub, requests/httpx and the OS raise into one line that says what to do.

Works with huggingface_hub 0.36 (requests) and 1.x (httpx): the Hub errors are matched by class from
``huggingface_hub.errors``, the transport errors by whichever of requests / urllib3 / httpx is importable, and the
whole ``__cause__`` / ``__context__`` chain is searched because the Hub client wraps the original error.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

TOKEN_PAGE = "https://huggingface.co/settings/tokens"
LOGIN = "run `huggingface-cli login` (or `hf auth login`) or set HF_TOKEN"


class DownloadError(ValueError):
    """A download problem the user can act on; the message is one line. (A ValueError, so that the CLI prints it
    without a traceback.)"""


class ChecksumMismatch(DownloadError):
    """A file's MD5 differs from the table; the file was moved aside."""


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _network_types() -> tuple[type, ...]:
    types: list[type] = [ConnectionError, TimeoutError]  # builtins: refused, reset, broken pipe, timeouts
    try:
        import requests

        types += [
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ]
    except ImportError:
        pass
    try:
        import urllib3

        types += [urllib3.exceptions.ProtocolError, urllib3.exceptions.NewConnectionError]
    except ImportError:
        pass
    try:
        import httpx

        types.append(httpx.TransportError)  # huggingface_hub 1.x
    except ImportError:
        pass
    return tuple(types)


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def explain(err: BaseException, repo_id: str, endpoint: str, have_token: bool) -> DownloadError:
    """The DownloadError to raise instead of ``err``, met while listing or fetching ``repo_id``."""
    from huggingface_hub import errors as hf_errors

    page = f"{endpoint}/{repo_id}"
    for e in _chain(err):
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return DownloadError(
                f"disk full while downloading {repo_id} ({one_line(e.strerror or e)}): free some "
                "space or pass another --checkpoint-dir, then run the same command again to resume"
            )
    for e in _chain(err):
        if isinstance(e, hf_errors.GatedRepoError):
            if not have_token or _status(e) == 401:
                return DownloadError(
                    f"{repo_id} is gated and no Hugging Face token was sent: create a Read token at "
                    f"{TOKEN_PAGE}, {LOGIN}, and accept the licence at {page}"
                )
            return DownloadError(
                f"{repo_id} is gated and your Hugging Face account has not been granted access: "
                f"accept the licence at {page} (logged in as the token's owner), then run the same "
                "command again"
            )
        if isinstance(e, hf_errors.RepositoryNotFoundError):
            if not have_token:
                return DownloadError(
                    f"{repo_id}: not visible without a Hugging Face token (401/404): create a Read "
                    f"token at {TOKEN_PAGE}, {LOGIN}, and accept the licence at {page}"
                )
            return DownloadError(
                f"{repo_id}: not found on {endpoint}, or your token cannot see it (404): check the "
                f"name and that the token's account accepted the licence at {page}"
            )
        if isinstance(e, hf_errors.OfflineModeIsEnabled) or type(e).__name__ == "OfflineModeIsEnabled":
            return DownloadError(
                "HF_HUB_OFFLINE=1 is set, so nothing can be downloaded: unset it (or set "
                "HF_HUB_OFFLINE=0) and run the same command again"
            )
        if isinstance(e, hf_errors.HfHubHTTPError) and _status(e) == 401:
            return DownloadError(
                f"the Hugging Face token was rejected (401 invalid credentials) for {repo_id}: create "
                f"a new Read token at {TOKEN_PAGE} and {LOGIN} (HF_TOKEN overrides a stored login)"
            )
        if isinstance(e, hf_errors.HfHubHTTPError) and _status(e) == 403:
            return DownloadError(
                f"{repo_id}: access refused (403): the token needs Read permission (a fine-grained "
                f"token needs 'read access to public gated repos'); see {TOKEN_PAGE}"
            )
    network = _network_types()
    for e in _chain(err):
        if isinstance(e, network):
            return DownloadError(
                f"lost or no connection to {endpoint} while downloading {repo_id} "
                f"({type(e).__name__}): check the network or proxy (HTTPS_PROXY), then run the same "
                "command again; finished files are kept and a partial file resumes"
            )
        if isinstance(e, OSError) and "Consistency check failed" in str(e):
            return DownloadError(
                f"the connection to {endpoint} was cut while downloading {repo_id} (a file arrived "
                "incomplete): run the same command again; finished files are kept and the partial "
                "file resumes"
            )
    if isinstance(err, hf_errors.LocalEntryNotFoundError):  # huggingface_hub's own "check your connection"
        return DownloadError(
            f"cannot reach {endpoint} for {repo_id}: check the network or proxy, then run the same command again"
        )
    status = _status(err)
    what = f"HTTP {status}" if status else type(err).__name__
    return DownloadError(f"downloading {repo_id} failed ({what}: {one_line(err)[:300]})")
