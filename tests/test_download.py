"""Download, resume, verify and extract, against archives served from a local folder.

A ``ThreadingHTTPServer`` on 127.0.0.1 serves a temporary folder, honours ``Range``
requests (or ignores them, when asked), counts requests, and can break a transfer off
after a number of bytes, so every path of ``data_prep.download`` runs without a network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from data_prep.download import (
    DATASETS,
    Archive,
    Dataset,
    download_dataset,
    download_file,
    extract_archive,
)

ROOT = Path(__file__).resolve().parents[1]


class ArchiveServer:
    """Serves ``folder`` on 127.0.0.1, recording each request's path and Range header."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.requests: list[tuple[str, str | None]] = []
        self.honour_range = True
        self.break_after: int | None = None  # send at most this many body bytes, then close
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                path = server.folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                range_header = self.headers.get("Range")
                if range_header and server.honour_range:
                    start = int(range_header.removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.break_after is not None:
                    body = body[: server.break_after]
                self.wfile.write(body)
                self.wfile.flush()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    server = ArchiveServer(folder)
    yield server
    server.close()


def make_archive(path: Path, files: dict[str, bytes]) -> bytes:
    """Write a .tar.gz holding ``files`` (name -> bytes) and return its bytes."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def random_bytes(n: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


SPEECH_FILES = {
    "yes/0a7c2a8d_nohash_0.wav": random_bytes(50_000, 1),
    "no/0b09edd3_nohash_0.wav": random_bytes(40_000, 2),
    "validation_list.txt": b"no/0b09edd3_nohash_0.wav\n",
    "testing_list.txt": b"",
    "_background_noise_/white_noise.wav": random_bytes(30_000, 3),
}


def speech_dataset(served: ArchiveServer, tmp_path: Path, sha256: str | None = "auto"):
    """A Speech Commands-shaped dataset whose one archive is served locally."""
    data = make_archive(served.folder / "sc.tar.gz", SPEECH_FILES)
    digest = hashlib.sha256(data).hexdigest() if sha256 == "auto" else sha256
    archive = Archive(f"{served.url}/sc.tar.gz", size=len(data), sha256=digest)
    return Dataset("sc", "sc_folder", (archive,), DATASETS["speech-commands"].ready_when), data


def test_download_verifies_and_extracts_the_served_archive(served, tmp_path):
    dataset, _ = speech_dataset(served, tmp_path)
    folder = download_dataset(dataset, tmp_path / "out", progress=False)
    assert folder == tmp_path / "out" / "sc_folder"
    for name, data in SPEECH_FILES.items():
        assert (folder / name).read_bytes() == data
    # The archive is deleted once extracted, and no scratch folder is left behind.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sc_folder"]
    # A second call finds the dataset ready and sends no request.
    before = len(served.requests)
    assert download_dataset(dataset, tmp_path / "out", progress=False) == folder
    assert len(served.requests) == before


def test_a_broken_transfer_resumes_from_the_partial_file(served, tmp_path):
    dataset, data = speech_dataset(served, tmp_path)
    served.break_after = 20_000
    with pytest.raises(ConnectionError, match="run the same command again"):
        download_dataset(dataset, tmp_path / "out", progress=False)
    partial = tmp_path / "out" / "sc.tar.gz.part"
    assert partial.stat().st_size == 20_000
    assert partial.read_bytes() == data[:20_000]

    served.break_after = None
    folder = download_dataset(dataset, tmp_path / "out", progress=False)
    assert served.requests[-1] == ("/sc.tar.gz", "bytes=20000-")
    assert (folder / "yes/0a7c2a8d_nohash_0.wav").read_bytes() == SPEECH_FILES[
        "yes/0a7c2a8d_nohash_0.wav"
    ]
    assert not partial.exists()


def test_a_server_that_ignores_range_sends_the_whole_file_again(served, tmp_path):
    data = random_bytes(100_000, 7)
    (served.folder / "blob.bin").write_bytes(data)
    destination = tmp_path / "blob.bin"
    destination.with_name("blob.bin.part").write_bytes(data[:30_000])
    served.honour_range = False
    digest = hashlib.sha256(data).hexdigest()
    path = download_file(f"{served.url}/blob.bin", destination, len(data), digest, False)
    assert served.requests == [("/blob.bin", "bytes=30000-")]
    assert path.read_bytes() == data


def test_a_complete_partial_file_is_not_fetched_again(served, tmp_path):
    data = random_bytes(10_000, 8)
    (served.folder / "blob.bin").write_bytes(data)
    destination = tmp_path / "blob.bin"
    destination.with_name("blob.bin.part").write_bytes(data)
    download_file(f"{served.url}/blob.bin", destination, len(data), None, False)
    assert served.requests == []
    assert destination.read_bytes() == data


def test_a_checksum_mismatch_deletes_the_download(served, tmp_path):
    dataset, _ = speech_dataset(served, tmp_path, sha256="0" * 64)
    with pytest.raises(ValueError, match="SHA-256 checksum mismatch"):
        download_dataset(dataset, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_wrong_size_deletes_the_download(served, tmp_path):
    data = random_bytes(5_000, 9)
    (served.folder / "blob.bin").write_bytes(data)
    with pytest.raises(ValueError, match="got 5000 bytes, expected 6000"):
        download_file(f"{served.url}/blob.bin", tmp_path / "blob.bin", 6000, None, False)
    assert list(tmp_path.glob("blob.bin*")) == []


def test_without_a_published_checksum_the_computed_one_is_kept(served, tmp_path, capsys):
    data = random_bytes(3_000, 10)
    (served.folder / "blob.bin").write_bytes(data)
    download_file(f"{served.url}/blob.bin", tmp_path / "blob.bin", None, None, False)
    digest = hashlib.sha256(data).hexdigest()
    assert (tmp_path / "blob.bin.sha256").read_text().strip() == digest
    assert digest in capsys.readouterr().out


def test_a_mirror_replaces_the_publishers_server(served, tmp_path, monkeypatch):
    data = make_archive(served.folder / "sc.tar.gz", SPEECH_FILES)
    archive = Archive("http://example.invalid/data/sc.tar.gz", len(data), None)
    dataset = Dataset("sc", "sc_folder", (archive,), ("validation_list.txt",))
    monkeypatch.setenv("COURSE_DOWNLOAD_MIRROR", served.url + "/")
    folder = download_dataset(dataset, tmp_path / "out", progress=False)
    assert served.requests == [("/sc.tar.gz", None)]
    assert (folder / "validation_list.txt").read_bytes() == SPEECH_FILES["validation_list.txt"]


def test_offline_is_a_clear_connection_error(tmp_path):
    with pytest.raises(ConnectionError, match="Are you offline"):
        download_file("http://127.0.0.1:1/sc.tar.gz", tmp_path / "sc.tar.gz", progress=False)


def test_a_missing_file_on_the_server_is_reported(served, tmp_path):
    with pytest.raises(ConnectionError, match="HTTP 404"):
        download_file(f"{served.url}/missing.tar.gz", tmp_path / "m.tar.gz", progress=False)


def test_an_archive_without_the_expected_files_is_reported(served, tmp_path):
    data = make_archive(served.folder / "other.tar.gz", {"readme.txt": b"hello"})
    archive = Archive(f"{served.url}/other.tar.gz", len(data), None)
    dataset = Dataset("other", "other", (archive,), ("validation_list.txt",))
    with pytest.raises(ValueError, match=r"did not contain validation_list\.txt"):
        download_dataset(dataset, tmp_path / "out", progress=False)


def test_an_unsafe_member_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    make_archive(archive, {"../evil.txt": b"outside", "fine.txt": b"inside"})
    with pytest.raises(ValueError, match="unsafe archive member"):
        extract_archive(archive, tmp_path / "into")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "into" / "fine.txt").exists()


def test_a_corrupt_archive_is_reported(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"not a tar file at all")
    with pytest.raises(ValueError, match="cannot extract"):
        extract_archive(archive, tmp_path / "into")


def test_an_unknown_dataset_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="choose one of: speech-commands, nsynth"):
        download_dataset("librispeech", tmp_path)


def test_speech_commands_checksum_matches_tensorflow_datasets():
    """The size and SHA-256 agree with the list that tensorflow-datasets publishes."""
    import tensorflow_datasets

    listing = Path(tensorflow_datasets.__file__).parent / "datasets/speech_commands/checksums.tsv"
    published = {
        url: (int(size), digest)
        for url, size, digest, *_ in (line.split("\t") for line in listing.read_text().splitlines())
    }
    (archive,) = DATASETS["speech-commands"].archives
    assert published[archive.url] == (archive.size, archive.sha256)


def test_command_line_offline_prints_one_error_line(tmp_path):
    env = {**os.environ, "COURSE_DOWNLOAD_MIRROR": "http://127.0.0.1:1"}
    result = subprocess.run(
        [sys.executable, "-m", "data_prep", "download", "nsynth", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach"), result.stderr
    assert "Are you offline" in lines[0]


def test_a_download_onto_google_drive_is_refused(served, tmp_path, monkeypatch):
    """Extracting a hundred thousand WAV files onto the Drive mount is slow: refused
    before any request, with a message that names the local alternative."""
    from course_lib import config

    monkeypatch.setattr(config, "DRIVE_MOUNT", tmp_path / "drive")
    dataset, _ = speech_dataset(served, tmp_path)
    with pytest.raises(ValueError, match=r"on Google Drive.*config\.scratch_dir\(\)"):
        download_dataset(dataset, tmp_path / "drive" / "MyDrive" / "data", progress=False)
    assert served.requests == [] and not (tmp_path / "drive").exists()


def test_by_default_a_download_lands_in_the_scratch_folder(served, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COURSE_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("COURSE_MODE", "full")
    dataset, _ = speech_dataset(served, tmp_path)
    folder = download_dataset(dataset, progress=False)
    assert folder == tmp_path / "scratch" / "downloads" / "sc_folder"
    assert (folder / "yes/0a7c2a8d_nohash_0.wav").read_bytes() == SPEECH_FILES[
        "yes/0a7c2a8d_nohash_0.wav"
    ]
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_full_mode_keeps_only_shards_on_the_data_folder(served, tmp_path, monkeypatch):
    """Notebook 01 in full mode, against an archive served locally: the archive is
    downloaded and extracted into the scratch folder; the data folder (Google Drive on
    Colab) receives only the TFRecords that the course reads (SC09 at the later notebooks'
    rates, "six" alone at the other rates of the comparison), no archive and no WAV file
    but the background noise bank; a second run, with the scratch folder wiped as a new
    Colab runtime wipes it, finds everything on the data folder and downloads nothing."""
    from course_lib import data
    from data_prep import download, prepare
    from data_prep.fixtures import make_fixtures

    (speech,) = make_fixtures(tmp_path / "fixture", kind="speech", per_class=5).datasets
    archive_path = served.folder / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive_path, "w:gz") as tar:
        for path in sorted(speech.root.iterdir()):
            if not path.name.startswith("."):
                tar.add(path, arcname=path.name)
    archive_bytes = archive_path.read_bytes()
    real = DATASETS["speech-commands"]
    served_archive = Archive(
        f"{served.url}/{archive_path.name}",
        len(archive_bytes),
        hashlib.sha256(archive_bytes).hexdigest(),
    )
    monkeypatch.setitem(
        download.DATASETS, "speech-commands", dataclasses.replace(real, archives=(served_archive,))
    )
    monkeypatch.delenv("COURSE_DOWNLOAD_MIRROR", raising=False)
    monkeypatch.setenv("COURSE_MODE", "full")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "drive"))
    monkeypatch.setenv("COURSE_SCRATCH_DIR", str(tmp_path / "local"))

    folders = prepare.speech_commands_for_course()

    extracted = tmp_path / "local" / "downloads" / real.folder
    assert (extracted / "six").is_dir() and (extracted / "testing_list.txt").is_file()
    assert sorted(p.name for p in (tmp_path / "local" / "downloads").iterdir()) == [real.folder]
    assert prepare.course_sample_rates("full") == (16000,)
    converted = tmp_path / "drive" / "tfrecords"
    expected = {
        16000: converted / "speech_commands_sc09_16000",
        8000: converted / "speech_commands_six_8000",
        4000: converted / "speech_commands_six_4000",
    }
    assert folders == expected
    assert sorted(p.name for p in converted.iterdir()) == sorted(p.name for p in expected.values())
    assert len(data.read_manifest(expected[16000]).labels) == 10
    assert data.read_manifest(expected[4000]).labels == ["six"]
    on_drive = [p.relative_to(tmp_path / "drive") for p in (tmp_path / "drive").rglob("*")]
    assert not [p for p in on_drive if p.name.endswith((".tar.gz", ".part"))]
    assert not [p for p in on_drive if p.suffix == ".wav" and p.parent.name != data.NOISE_FOLDER]
    assert {p.parts[0] for p in on_drive} == {"tfrecords"}

    shutil.rmtree(tmp_path / "local")
    requests = len(served.requests)
    assert prepare.speech_commands_for_course() == expected
    assert len(served.requests) == requests and not (tmp_path / "local" / "downloads").exists()
