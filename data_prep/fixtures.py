"""Offline fixture datasets: ``python -m data_prep fixtures --out DIR [--kind ...]``.

Quick mode and CI train on these instead of the real datasets; they use the real
layouts, so the same converters read both:

=========  =====================  ==================================================
kind       folder under ``out``   layout and default size (``per_class``)
=========  =====================  ==================================================
speech     ``speech_commands/``   Speech Commands v0.02; 20 words x 48 speakers
                                  (:mod:`data_prep.fixture_speech`)
notes      ``nsynth/``            NSynth json/wav, ``nsynth-valid`` and
                                  ``nsynth-test``; 5 families x 24 notes per split
                                  (:mod:`data_prep.fixture_notes`)
music      ``gtzan/``             GTZAN ``genres/<genre>/<genre>.000NN.wav``;
                                  4 genres x 12 clips of 6 s (``music_seconds``)
                                  (:mod:`data_prep.fixture_music`)
=========  =====================  ==================================================

Same ``seed`` and ``per_class``: byte-identical audio, list and json files.

Safe to interrupt and to rerun. Each dataset is built in a hidden staging folder
(``.<name>.partial-<pid>-...``) and renamed into place when complete, with a marker file
``.fixture.json`` (the settings and counts) written last inside it, so a dataset folder
is either complete or absent. A rerun with the same settings finds the marker and
returns at once; with other settings it rebuilds the folder and swaps it in. A folder
without the marker (not made here) is never touched: that is an error.

Used in: every notebook in quick mode (through :mod:`data_prep.prepare`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

KINDS = ("speech", "notes", "music")
MARKER_NAME = ".fixture.json"
FORMAT_VERSION = 1
DATASET_FOLDERS = {"speech": "speech_commands", "notes": "nsynth", "music": "gtzan"}
DEFAULT_PER_CLASS = {"speech": 48, "notes": 24, "music": 12}
"""Default ``per_class``: speakers (= clips per word; about 38 / 5 / 5 speakers in train /
validation / test, enough for a small CNN to pass 90% on unseen speakers), notes per family
in each NSynth split (3 instruments x 8 notes), clips per genre."""


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """One generated (or reused) fixture dataset.

    Attributes:
        kind: ``"speech"``, ``"notes"`` or ``"music"``.
        root: the dataset folder.
        counts: class (word, family, genre) -> files.
        splits: split name -> files (empty for GTZAN, which has no splits).
        seconds: time spent building it (0 when reused).
        reused: True when a complete folder with the same settings was already there.
    """

    kind: str
    root: Path
    counts: dict[str, int]
    splits: dict[str, int]
    seconds: float
    reused: bool

    @property
    def files(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        state = "reused" if self.reused else f"built in {self.seconds:.1f} s"
        splits = " / ".join(f"{name} {count}" for name, count in self.splits.items())
        classes = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        lines = [
            f"  {self.root.name}: {self.files} files in {len(self.counts)} classes"
            f"{f' ({splits})' if splits else ''}, {state}",
            f"    {classes}",
        ]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class FixtureReport:
    """What :func:`make_fixtures` made: one root per dataset (None when not asked for).

    Attributes:
        out: the folder holding the datasets.
        speech_commands: the Speech Commands layout folder, or None.
        nsynth: the folder holding ``nsynth-valid/`` and ``nsynth-test/``, or None.
        gtzan: the folder holding ``genres/``, or None.
        datasets: a summary per dataset, in the order built.
        seconds: total time.
        seed: the seed used.
    """

    out: Path
    speech_commands: Path | None
    nsynth: Path | None
    gtzan: Path | None
    datasets: tuple[DatasetSummary, ...]
    seconds: float
    seed: int

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Dataset folder name -> class -> files."""
        return {summary.root.name: summary.counts for summary in self.datasets}

    def __str__(self) -> str:
        lines = [f"fixtures in {self.out} (seed {self.seed}):"]
        lines += [str(summary) for summary in self.datasets]
        lines.append(
            f"  {sum(summary.files for summary in self.datasets)} files, {self.seconds:.1f} s"
        )
        return "\n".join(lines)


def _writer(kind: str) -> Callable[..., dict]:
    """The function that writes a dataset of ``kind`` into a folder (``folder, per_class,
    seed``, and for music ``seconds``).

    Imported on demand: a rerun that finds its datasets complete loads neither eSpeak nor
    scipy.
    """
    if kind == "speech":
        from data_prep.fixture_speech import write_speech_commands

        return write_speech_commands
    if kind == "notes":
        from data_prep.fixture_notes import write_nsynth

        return write_nsynth
    from data_prep.fixture_music import write_gtzan

    return write_gtzan


def make_fixtures(
    out: str | Path,
    kind: str = "all",
    per_class: int | None = None,
    seed: int = 0,
    music_seconds: float | None = None,
) -> FixtureReport:
    """Generate (or find) the offline fixture datasets under ``out``.

    Args:
        out: folder for ``speech_commands/``, ``nsynth/`` and ``gtzan/`` (created).
        kind: ``"all"``, ``"speech"``, ``"notes"`` or ``"music"``.
        per_class: speakers per word (default 48), notes per family and split (24), or
            clips per genre (12); None for each dataset's default.
        seed: seed of every random choice (a non-negative int).
        music_seconds: the length of each music clip, at least 1 s (the notebooks cut
            1 s clips from them); None for 6 s.

    Returns:
        A :class:`FixtureReport`; ``print`` it for a summary.

    Raises:
        ValueError: unknown ``kind``, ``per_class`` < 1, negative ``seed``,
            ``music_seconds`` < 1, or a dataset folder under ``out`` that was not made by
            this function.
    """
    if kind != "all" and kind not in KINDS:
        raise ValueError(f"kind must be 'all' or one of {KINDS}, not {kind!r}.")
    if per_class is not None and (
        isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1
    ):
        raise ValueError(
            f"per_class must be a whole number >= 1 (or None for the defaults), not {per_class!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, not {seed!r}.")
    if music_seconds is not None and (
        isinstance(music_seconds, bool)
        or not isinstance(music_seconds, (int, float))
        or not music_seconds >= 1
    ):
        raise ValueError(
            f"music_seconds must be a number of seconds >= 1 (or None for the default), "
            f"not {music_seconds!r}."
        )
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = [
        _build_dataset(
            out,
            name,
            DEFAULT_PER_CLASS[name] if per_class is None else per_class,
            seed,
            {"seconds": float(music_seconds)} if name == "music" and music_seconds else {},
        )
        for name in (KINDS if kind == "all" else (kind,))
    ]
    roots = {summary.kind: summary.root for summary in summaries}
    return FixtureReport(
        out,
        roots.get("speech"),
        roots.get("notes"),
        roots.get("music"),
        tuple(summaries),
        time.perf_counter() - start,
        seed,
    )


def read_marker(folder: Path) -> dict | None:
    """The marker of a complete fixture dataset folder, or None if there is none."""
    try:
        return json.loads((folder / MARKER_NAME).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _build_dataset(
    out: Path, kind: str, per_class: int, seed: int, options: dict
) -> DatasetSummary:
    """Build (or reuse) the ``kind`` dataset; ``options`` go to its writer (and into its
    settings: other options, another dataset)."""
    final = out / DATASET_FOLDERS[kind]
    settings = {"kind": kind, "per_class": per_class, "seed": seed, "version": FORMAT_VERSION}
    settings.update(options)
    marker = read_marker(final)
    if marker is not None and marker.get("settings") == settings:
        return _summary(kind, final, marker, 0.0, reused=True)
    if marker is None and final.exists() and any(final.iterdir()):
        raise ValueError(
            f"{final} exists but was not made by `fixtures` (no {MARKER_NAME}); "
            "move it away or choose another --out."
        )

    _remove_abandoned_staging(out, final.name)
    start = time.perf_counter()
    staging = out / f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()  # not tempfile.mkdtemp: its 0o700 mode would stay on the dataset
    try:
        details = _writer(kind)(staging, per_class, seed, **options)
        marker = {"settings": settings, **details}
        marker_temporary = staging / f"{MARKER_NAME}.tmp"
        marker_temporary.write_text(json.dumps(marker, indent=1))
        marker_temporary.replace(staging / MARKER_NAME)  # written last: the folder is complete
        installed = _install(staging, final, settings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already unless something failed
    if not installed:  # another process finished the same dataset first: use its folder
        return _summary(kind, final, read_marker(final), 0.0, reused=True)
    return _summary(kind, final, marker, time.perf_counter() - start, reused=False)


def _install(staging: Path, final: Path, settings: dict) -> bool:
    """Rename ``staging`` to ``final``, replacing an older fixture there.

    Returns False (and leaves ``final`` alone) when another process installed a dataset
    with the same settings in the meantime.
    """
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        final.rename(old)
    try:
        staging.rename(final)
    except OSError:  # `final` reappeared: a concurrent run installed its copy
        marker = read_marker(final)
        if marker is None or marker.get("settings") != settings:
            raise
        return False
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return True


def _remove_abandoned_staging(out: Path, name: str) -> None:
    """Delete staging folders of ``name`` left by runs that were killed (their pid is gone)."""
    for folder in out.glob(f".{name}.partial-*"):
        pid_text = folder.name.removeprefix(f".{name}.partial-").split("-")[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # elsewhere signal 0 is not a probe
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _summary(kind: str, root: Path, marker: dict, seconds: float, reused: bool) -> DatasetSummary:
    return DatasetSummary(
        kind, root, dict(marker["counts"]), dict(marker.get("splits", {})), seconds, reused
    )
