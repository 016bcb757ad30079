"""``cosmos-ar download``: the released Cosmos-Predict1 checkpoints from the Hugging Face Hub, in cosmos-predict1's
folder layout, resumable, MD5-checked. ``catalog`` says what and where; ``fetch`` does it; ``errors`` turns failures
into one line."""

from nemo_cosmos_ar.download.catalog import MD5_CHECKSUMS, RepoSpec, check_model_sizes, repos_for
from nemo_cosmos_ar.download.checksums import md5_file
from nemo_cosmos_ar.download.errors import ChecksumMismatch, DownloadError
from nemo_cosmos_ar.download.fetch import RepoPlan, download

__all__ = [
    "MD5_CHECKSUMS",
    "ChecksumMismatch",
    "DownloadError",
    "RepoPlan",
    "RepoSpec",
    "check_model_sizes",
    "download",
    "md5_file",
    "repos_for",
]
