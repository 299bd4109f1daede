"""Checksummed, resumable downloads, and the folders where named datasets live.

A download goes to ``<dest>.part`` (resumed with an HTTP ``Range`` request when the server
honours it), is checked against its SHA-256, and only then renamed to ``dest``: a file at its
final name is always complete.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from vaekit.errors import DataError, DownloadError
from vaekit.sections import DataConfig

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_BY_HAND = "put the files in a folder and pass --set data.root=DIR"


def default_root(name: str) -> Path:
    """Folder for dataset ``name``: ``$VAEKIT_DATA/<name>``, else ``~/.cache/vaekit/<name>``."""
    base = os.environ.get("VAEKIT_DATA")
    parent = Path(base).expanduser() if base else Path.home() / ".cache" / "vaekit"
    return parent / name


def sha256_of(path: Path) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, sha256: str, *, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest``, resuming a partial download and verifying its SHA-256.

    Parameters
    ----------
    url
        What to fetch (``http``/``https``).
    dest
        Final path; the transfer is written to ``dest`` + ``.part`` and renamed when verified.
    sha256
        Expected hex digest of the whole file.
    timeout
        Seconds to wait on the connection before giving up.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        The URL could not be reached, the transfer failed, or the checksum did not match (the
        partial file is then deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "vaekit"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    resume_note = f" (resuming at byte {offset})" if offset else ""
    logger.info("downloading %s to %s%s", url, dest, resume_note)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        # 416: the partial file already holds every byte; verify it below.
        if not (offset and error.code == 416):
            raise DownloadError(
                f"download of {url!r} failed: HTTP {error.code} {error.reason}; {_BY_HAND}"
            ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error.__class__.__name__
        raise DownloadError(
            f"could not reach {url!r} ({reason}); to supply {dest.name} by hand, {_BY_HAND}"
        ) from None
    else:
        _save(response, part, offset, url)
    _verify(part, sha256, dest, url)
    os.replace(part, dest)
    return dest


def _save(response, part: Path, offset: int, url: str) -> None:
    """Write the response's body to ``part``, after its first ``offset`` bytes if the server resumed."""
    with response:
        resumed = offset > 0 and response.status == 206
        try:
            with open(part, "ab" if resumed else "wb") as handle:
                shutil.copyfileobj(response, handle, _CHUNK)
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(
                f"download of {url!r} into '{part}' stopped ({error.__class__.__name__}); "
                "run again to resume"
            ) from None


def _verify(part: Path, sha256: str, dest: Path, url: str) -> None:
    """Check ``part`` against its expected SHA-256; delete it when it does not match."""
    actual = sha256_of(part)
    if actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"downloaded file '{dest}' from {url!r}: SHA-256 {actual}, expected {sha256.lower()} "
            "(the partial file was deleted; run again)"
        )


def _candidate_dirs(name: str, config: DataConfig, extra_dirs: Sequence[Path]) -> list[Path]:
    dirs = [Path(config.root).expanduser()] if config.root else []
    return [*dirs, default_root(name), *(Path(d) for d in extra_dirs)]


def _find(filename: str, dirs: Sequence[Path]) -> Path | None:
    # A gzip file is also accepted uncompressed (``x.gz`` or ``x``), as users often gunzip them.
    names = [filename, filename[: -len(".gz")]] if filename.endswith(".gz") else [filename]
    for folder in dirs:
        for candidate in names:
            if (folder / candidate).is_file():
                return folder / candidate
    return None


def find_local(
    name: str, filenames: Sequence[str], config: DataConfig, *, extra_dirs: Sequence[Path] = ()
) -> dict[str, Path | None]:
    """Where each of dataset ``name``'s files already lies (``None`` where it is not found).

    Looks in ``config.root``, then :func:`default_root`, then ``extra_dirs``.
    """
    dirs = _candidate_dirs(name, config, extra_dirs)
    return {filename: _find(filename, dirs) for filename in filenames}


def fetch_files(
    name: str,
    files: Mapping[str, tuple[str, str]],
    config: DataConfig,
    *,
    extra_dirs: Sequence[Path] = (),
) -> dict[str, Path]:
    """Find dataset ``name``'s files locally, downloading the missing ones when allowed.

    Parameters
    ----------
    name
        The dataset's registered name (its folder under :func:`default_root`).
    files
        ``{filename: (url, sha256)}``.
    config
        ``root`` is searched first and downloaded into when set; ``download`` allows the network.
    extra_dirs
        Further folders to search (a system package's data folder), never written to.

    Returns
    -------
    dict
        ``{filename: path}``; a path may be the uncompressed twin of a ``.gz`` name.

    Raises
    ------
    DataError
        A file is missing and ``config.download`` is false.
    DownloadError
        A download failed (see :func:`download`).
    """
    found = find_local(name, list(files), config, extra_dirs=extra_dirs)
    missing = [filename for filename, path in found.items() if path is None]
    if missing and not config.download:
        looked = ", ".join(f"'{d}'" for d in _candidate_dirs(name, config, extra_dirs))
        raise DataError(
            f"dataset {name!r}: {', '.join(missing)} not found (looked in {looked}) and "
            f"data.download is false; {_BY_HAND}"
        )
    target = Path(config.root).expanduser() if config.root else default_root(name)
    for filename in missing:
        url, sha256 = files[filename]
        found[filename] = download(url, target / filename, sha256)
    return {filename: path for filename, path in found.items() if path is not None}
