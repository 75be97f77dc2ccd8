"""Download and extract the published dataset archives, resumably and verified.

``download_dataset("speech-commands", out)`` fetches Speech Commands v0.02 (Warden, 2018);
``download_dataset("nsynth", out)`` fetches the NSynth (Engel et al., 2017) validation and
test sets in their json/wav form. Each archive is:

1. streamed to ``<name>.part`` with a progress bar; an interrupted download continues from
   the bytes already on disk with an HTTP ``Range`` request (or starts over when the server
   ignores it);
2. checked against its published size and SHA-256, when known. NSynth publishes no
   checksum, so its SHA-256 is computed, printed and stored in ``<name>.sha256`` so a later
   download can be compared with it;
3. renamed to its final name only when complete and verified;
4. extracted into a temporary folder with ``tarfile``'s ``"data"`` filter (no absolute
   paths, no links out of the folder), then moved into place, so a half-extracted folder
   never looks finished. The archive is then deleted to save space.

Everything lands on the runtime's local disk, by default ``config.scratch_dir() /
"downloads"`` (``/content/course_scratch`` on Colab), never on the Google Drive mount:
writing a hundred thousand small files there is slow, and only the converted TFRecords
are worth keeping (``data_prep.prepare`` converts them into ``config.data_dir()``).

Offline, or when the server cannot be reached, it raises ``ConnectionError`` with a
message saying what to do instead. ``COURSE_DOWNLOAD_MIRROR`` (or ``mirror=``) replaces
the servers with a folder URL that holds the same archive names, for a classroom mirror.

Used in: 01_speech_commands_tfrecords.ipynb and 05_vq_vae_inpainting.ipynb (full mode,
through ``data_prep.prepare``), and ``python -m data_prep download``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from course_lib import config

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class Archive:
    """One published archive.

    Attributes:
        url: where it is published.
        size: its size in bytes, or ``None`` when not published.
        sha256: its SHA-256 hex digest, or ``None`` when not published.
    """

    url: str
    size: int | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset made of archives extracted into one folder.

    Attributes:
        name: the name used on the command line.
        folder: the folder (under the download folder) that the archives extract into.
        archives: the archives to fetch.
        ready_when: paths, relative to ``folder``, that exist once everything is extracted.
    """

    name: str
    folder: str
    archives: tuple[Archive, ...]
    ready_when: tuple[str, ...]


DATASETS = {
    "speech-commands": Dataset(
        name="speech-commands",
        folder="speech_commands_v0.02",
        archives=(
            Archive(
                "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                size=2428923189,
                sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
            ),
        ),
        ready_when=("validation_list.txt", "testing_list.txt", "_background_noise_"),
    ),
    "nsynth": Dataset(
        name="nsynth",
        folder="nsynth",
        archives=(
            Archive(
                "http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-valid.jsonwav.tar.gz"
            ),
            Archive(
                "http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-test.jsonwav.tar.gz"
            ),
        ),
        ready_when=("nsynth-valid/examples.json", "nsynth-test/examples.json"),
    ),
}


def download_dataset(
    name: str | Dataset,
    out: str | Path | None = None,
    mirror: str | None = None,
    progress: bool = True,
    keep_archives: bool = False,
    allow_drive: bool = False,
) -> Path:
    """Download and extract a dataset into ``out``, unless it is already there.

    Args:
        name: ``"speech-commands"``, ``"nsynth"``, or a :class:`Dataset`.
        out: the download folder on a local disk; the dataset lands in
            ``out / dataset.folder`` (default: ``config.scratch_dir() / "downloads"``).
        mirror: a URL prefix replacing the publishers' servers (default: the
            ``COURSE_DOWNLOAD_MIRROR`` variable, if set).
        progress: show progress bars.
        keep_archives: keep the ``.tar.gz`` files after extraction.
        allow_drive: extract onto the Google Drive mount all the same (slow: tens of
            thousands of small files); refused by default.

    Returns:
        The extracted dataset folder.

    Raises:
        ValueError: unknown dataset, ``out`` on Google Drive, a checksum mismatch or an
            unsafe archive.
        ConnectionError: the server cannot be reached (offline).
    """
    dataset = name if isinstance(name, Dataset) else _dataset(name)
    out = Path(out) if out is not None else config.scratch_dir() / "downloads"
    if config.on_drive(out) and not allow_drive:
        raise ValueError(
            f"{out} is on Google Drive: extracting {dataset.name} there is slow and fills "
            "your Drive. Download to the runtime's disk instead (config.scratch_dir(), "
            "the default); only the converted TFRecords belong on Drive."
        )
    target = out / dataset.folder
    if _is_ready(dataset, target):
        return target
    mirror = mirror if mirror is not None else config.download_mirror()
    out.mkdir(parents=True, exist_ok=True)
    for archive in dataset.archives:
        extracted = target / f".{archive.filename}.extracted"
        if extracted.is_file():
            continue
        url = f"{mirror.rstrip('/')}/{archive.filename}" if mirror else archive.url
        path = download_file(url, out / archive.filename, archive.size, archive.sha256, progress)
        extract_archive(path, target)
        extracted.touch()
        if not keep_archives:
            path.unlink()
    if not _is_ready(dataset, target):
        missing = [p for p in dataset.ready_when if not (target / p).exists()]
        raise ValueError(f"{dataset.name}: the archives did not contain {', '.join(missing)}.")
    return target


def download_file(
    url: str,
    destination: str | Path,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``destination``, resuming a ``.part`` file, and verify it.

    Returns at once when ``destination`` already exists (it was verified when written).

    Raises:
        ConnectionError: the server cannot be reached or the transfer broke off (run it
            again to continue where it stopped).
        ValueError: the size or SHA-256 differs from the published one (the partial file
            is deleted, so the next run starts over).
    """
    destination = Path(destination)
    if destination.is_file():
        return destination
    partial = destination.with_name(destination.name + ".part")
    offset = partial.stat().st_size if partial.is_file() else 0
    if size is None or offset < size:
        _fetch(url, partial, offset, progress)
    digest = _verify(partial, size, sha256, url)
    if sha256 is None:
        destination.with_name(destination.name + ".sha256").write_text(digest + "\n")
        print(f"{destination.name}: no published checksum; its SHA-256 is {digest}")
    partial.replace(destination)
    return destination


def extract_archive(archive: str | Path, into: str | Path) -> Path:
    """Extract a tar archive into ``into``, atomically per top-level entry.

    Members are extracted into a hidden temporary folder next to ``into`` with the
    ``"data"`` filter, then each top-level entry is moved into ``into``.

    Raises:
        ValueError: the archive is unreadable or has a member that would land outside
            the folder (absolute path, ``..``, or a link pointing out).
    """
    archive, into = Path(archive), Path(into)
    scratch = into.parent / f".{archive.name}.extracting"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
    except tarfile.FilterError as error:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ValueError(f"{archive.name}: refusing an unsafe archive member: {error}") from None
    except (tarfile.TarError, EOFError, OSError) as error:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ValueError(
            f"{archive.name}: cannot extract ({error}); delete it and download again."
        ) from None
    into.mkdir(parents=True, exist_ok=True)
    for entry in sorted(scratch.iterdir()):
        destination = into / entry.name
        if destination.is_dir() and entry.is_dir():
            shutil.rmtree(destination)
        elif destination.exists():
            destination.unlink()
        entry.rename(destination)
    scratch.rmdir()
    return into


def _dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name]


def _is_ready(dataset: Dataset, target: Path) -> bool:
    return all((target / path).exists() for path in dataset.ready_when)


def _fetch(url: str, partial: Path, offset: int, progress: bool) -> None:
    """Append the bytes of ``url`` from ``offset`` to ``partial`` (from 0 if the server
    does not honour ranges)."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "course-kit-data-prep"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the range starts at the end: nothing left to fetch
            return
        raise ConnectionError(f"cannot download {url}: HTTP {error.code} {error.reason}.") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(
            f"cannot reach {url} ({reason}). Are you offline? Download it by hand into "
            f"{partial.parent}, set {config.DOWNLOAD_MIRROR_VARIABLE} to a mirror, or convert "
            "a folder you already have with --source."
        ) from None
    with response:
        resumed = response.status == 206
        if offset and not resumed:
            offset = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with (
            open(partial, "ab" if resumed else "wb") as file,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=partial.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while chunk := _read_chunk(response, url, file.tell()):
                file.write(chunk)
                bar.update(len(chunk))
        if total is not None and partial.stat().st_size < total:
            raise ConnectionError(
                f"the download of {url} broke off after {partial.stat().st_size} of {total} "
                "bytes; run the same command again to continue where it stopped."
            )


def _read_chunk(response, url: str, bytes_so_far: int) -> bytes:
    try:
        return response.read(CHUNK_BYTES)
    except (TimeoutError, http.client.IncompleteRead, ConnectionError) as error:
        raise ConnectionError(
            f"the download of {url} broke off after {bytes_so_far} bytes ({error!r}); "
            "run the same command again to continue where it stopped."
        ) from None


def _verify(partial: Path, size: int | None, sha256: str | None, url: str) -> str:
    """Check size and SHA-256; delete the file and raise ``ValueError`` on a mismatch."""
    actual_size = partial.stat().st_size
    if size is not None and actual_size != size:
        partial.unlink()
        raise ValueError(
            f"{url}: got {actual_size} bytes, expected {size}; deleted it, run again to restart."
        )
    digest = hashlib.sha256()
    with open(partial, "rb") as file:
        while block := file.read(CHUNK_BYTES):
            digest.update(block)
    if sha256 is not None and digest.hexdigest() != sha256:
        partial.unlink()
        raise ValueError(
            f"{url}: SHA-256 checksum mismatch (got {digest.hexdigest()}, expected {sha256}); "
            "deleted it, run again to restart."
        )
    return digest.hexdigest()
