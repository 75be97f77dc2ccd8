"""Make sure a notebook's data exists: fixtures in quick mode, downloads in full mode.

Library functions take a folder; notebooks call these to get one. Two folders matter:

- the data folder (``course_lib.config.data_dir()``, on Google Drive when mounted)
  keeps the converted TFRecords (and, beside them, the checkpoints), so every
  conversion is done once and found at once afterwards, even in a new Colab runtime;
- the scratch folder (``course_lib.config.scratch_dir()``, on the runtime's local
  disk) receives the downloaded archives, the extracted WAV files and the fixtures:
  they are only read while converting, and a hundred thousand small files do not
  belong on Drive.

A ``root`` passed to a function replaces the data folder; its scratch folder is then
``root / "scratch"`` unless ``scratch`` is passed too.

Used in: every notebook.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from course_lib import config, data
from data_prep.conversion_lock import conversion_lock

COURSE_WORDS = "sc09"
"""The words that notebooks 02 to 07 read: Speech Commands' ten digits."""
JUDGE_SAMPLE_RATE = 16000
"""The judge's rate (``JudgeConfig.sample_rate`` in both presets): it scores every model."""
PREFERRED_COMPARISON_WORD = "six"
"""The word of notebook 01's 16/8/4 kHz comparison: the hiss of its *s* fades first."""
REHEARSAL_FIXTURE_SIZES = {"speech": 3, "notes": 2}
"""The rehearsal's fixtures (``per_class`` of ``data_prep.fixtures.make_fixtures``): three
speakers per word (one per split) and two notes per family and split. Tiny counts: the
rehearsal runs the full presets' shapes, not their data. The music keeps its 12 files per
genre (its splits are drawn by hashing file names, and fewer files can leave its test
split empty), each :data:`REHEARSAL_MUSIC_SECONDS` long."""
REHEARSAL_MUSIC_SECONDS = 2.0
"""The length of the rehearsal's music files (6 s otherwise): 96 one-second clips, not
288, for notebook 04's genre judge and music VAE; longer than the full WaveNet's
training crop (0.7 s) of notebook 06."""


def course_sample_rates(run_mode: config.Mode | None = None) -> tuple[int, ...]:
    """The rates at which notebooks 02 to 07 read SC09 in ``run_mode``, highest first.

    Read from the presets of the judge (02, and the scoring of every model), diffusion
    (03), VAE (04), WaveNet (06) and the VQ-VAE on speech (07), as notebook 07 collects
    them: 16 kHz alone in full mode; 16, 8 and 4 kHz in quick mode.

    Args:
        run_mode: ``"quick"`` or ``"full"`` (default: ``config.mode()``).
    """
    from course_lib.diffusion.settings import DiffusionConfig
    from course_lib.judge import JudgeConfig
    from course_lib.vae.settings import VAEConfig
    from course_lib.vq.settings import VQConfig
    from course_lib.wavenet.settings import WaveNetConfig

    presets = (JudgeConfig, DiffusionConfig, VAEConfig, VQConfig, WaveNetConfig)
    rates = {preset.for_mode(run_mode).sample_rate for preset in presets}
    return tuple(sorted(rates | {JUDGE_SAMPLE_RATE}, reverse=True))


@dataclasses.dataclass(frozen=True)
class SpeechCommandsConfig(config.Presets):
    """Settings of 01_speech_commands_tfrecords.ipynb.

    ``words`` is the set notebook 01 looks at and times; whatever it is, the notebook
    converts SC09 at the rates the later notebooks read (:func:`course_sample_rates`), and
    for the comparison of ``sample_rates`` one word only (:func:`comparison_word`) at the
    rates that have no SC09 conversion. Full: Speech Commands v0.02 (2.4 GB to download
    onto the runtime's disk), SC09 at 16 kHz (38,908 clips, 1.25 GB on Drive) and "six"
    at 8 and 4 kHz (3,860 clips, 0.1 GB); ``words="all"`` adds the 35-word set at 16 kHz
    (105,829 clips, 3.4 GB). Quick: the spoken-word fixture (20 words), SC09 at all
    three rates.
    """

    # data
    words: str = COURSE_WORDS  # "all": the 35-word set; or a comma-separated list
    sample_rates: tuple[int, ...] = (16000, 8000, 4000)  # the comparison's rates
    # pipeline
    batch_size: int = 64
    benchmark_batches: int = 200
    # listening and plots
    clips_to_show: int = 8

    # The rehearsal (COURSE_MODE=rehearsal): a few batches timed.
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(benchmark_batches=4)

    @classmethod
    def quick(cls) -> SpeechCommandsConfig:
        return cls(benchmark_batches=12)


def comparison_word(words: str) -> str:
    """The word of notebook 01's rate comparison among ``words`` (``"all"``, ``"sc09"`` or
    a comma-separated list): "six" when it is there, else the first word listed.

    Raises:
        ValueError: ``words`` is empty.
    """
    spec = words.strip().lower()
    if spec in ("all", "sc09"):
        return PREFERRED_COMPARISON_WORD
    listed = [word.strip() for word in spec.split(",") if word.strip()]
    if not listed:
        raise ValueError("words is empty: use all, sc09 or a comma-separated list.")
    return PREFERRED_COMPARISON_WORD if PREFERRED_COMPARISON_WORD in listed else listed[0]


def speech_commands_for_course(
    cfg: SpeechCommandsConfig | None = None,
    root: str | Path | None = None,
    scratch: str | Path | None = None,
) -> dict[int, Path]:
    """Notebook 01's conversions: what the course reads, and what notebook 01 shows.

    1. SC09 at every rate of :func:`course_sample_rates` (what notebooks 02 to 07 read);
    2. ``cfg.words`` at 16 kHz, when it is not SC09 (``"all"``: the 35-word set);
    3. for the comparison, at each other rate of ``cfg.sample_rates``: the clips of one
       word (:func:`comparison_word`), not a whole set.

    Each conversion is done once (see :func:`speech_commands_tfrecords`); once all are
    there, this returns at once without touching the source.

    Args:
        cfg: notebook 01's settings (default: ``SpeechCommandsConfig.for_mode()``).
        root: data folder (default: ``config.data_dir()``).
        scratch: local folder for the download (default: see the module docstring).

    Returns:
        Rate -> folder, for each rate of ``cfg.sample_rates``: ``cfg.words`` at 16 kHz;
        at another rate, SC09's folder when step 1 made one there and it holds the
        comparison word, else the comparison word's own folder.

    Raises:
        ValueError: ``cfg.sample_rates`` lacks 16 kHz (the rate notebook 01 reads).
    """
    cfg = cfg if cfg is not None else SpeechCommandsConfig.for_mode()
    if JUDGE_SAMPLE_RATE not in cfg.sample_rates:
        raise ValueError(
            f"sample_rates must include {JUDGE_SAMPLE_RATE}, the rate notebook 01 reads; "
            f"got {cfg.sample_rates}."
        )
    from data_prep.speech_commands import SC09_WORDS

    course = {
        rate: speech_commands_tfrecords(rate, COURSE_WORDS, root, scratch=scratch)
        for rate in course_sample_rates()
    }
    shows_sc09 = _words_tag(cfg.words) == COURSE_WORDS
    word = comparison_word(cfg.words)
    folders = {}
    for rate in cfg.sample_rates:
        if rate == JUDGE_SAMPLE_RATE and not shows_sc09:
            folders[rate] = speech_commands_tfrecords(rate, cfg.words, root, scratch=scratch)
        elif rate in course and (shows_sc09 or word in SC09_WORDS):
            folders[rate] = course[rate]  # SC09 holds the comparison word's clips
        else:
            folders[rate] = speech_commands_tfrecords(rate, word, root, scratch=scratch)
    return folders


def _root(root: str | Path | None) -> Path:
    return Path(root) if root is not None else config.data_dir()


def _scratch(root: str | Path | None, scratch: str | Path | None) -> Path:
    """The local folder for downloads and fixtures: ``scratch``; else ``root / "scratch"``
    when a data folder is given; else ``config.scratch_dir()``."""
    if scratch is not None:
        return Path(scratch)
    return Path(root) / "scratch" if root is not None else config.scratch_dir()


def _words_tag(words: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")


def _fixture(scratch: Path, kind: str) -> Path:
    """The folder of one fixture dataset under ``scratch / "fixtures"`` (``kind``:
    ``"speech"``, ``"notes"`` or ``"music"``), generated on first use: the default size,
    or :data:`REHEARSAL_FIXTURE_SIZES` and :data:`REHEARSAL_MUSIC_SECONDS` in the rehearsal."""
    from data_prep.fixtures import make_fixtures

    rehearsal = config.mode() == "rehearsal"
    per_class = REHEARSAL_FIXTURE_SIZES.get(kind) if rehearsal else None
    music_seconds = REHEARSAL_MUSIC_SECONDS if rehearsal else None
    (made,) = make_fixtures(
        scratch / "fixtures", kind=kind, per_class=per_class, music_seconds=music_seconds
    ).datasets
    return made.root


def _fixture_or_download(
    root: str | Path | None, scratch: str | Path | None, kind: str, dataset: str
) -> Path:
    """The ``kind`` fixture in quick mode and the rehearsal; the published ``dataset``,
    downloaded into ``scratch / "downloads"`` once, in full mode (both on the local disk)."""
    scratch = _scratch(root, scratch)
    if config.uses_fixtures():
        return _fixture(scratch, kind)
    from data_prep.download import download_dataset

    return download_dataset(dataset, scratch / "downloads")


def _converted(out: Path) -> bool:
    """Whether ``out`` holds a finished conversion (its ``manifest.json`` is written last)."""
    return (out / data.MANIFEST_NAME).is_file()


def _convert_once(out: Path, convert: Callable[[], object]) -> Path:
    """``out``, after ``convert()`` (whose report is printed) unless it holds a finished
    conversion. A process that finds another converting into ``out`` waits for it, then
    uses its folder (:mod:`data_prep.conversion_lock`)."""
    if not _converted(out):
        with conversion_lock(out):
            if not _converted(out):  # not finished while this process waited
                print(convert())
    return out


def speech_commands_source(
    root: str | Path | None = None, scratch: str | Path | None = None
) -> Path:
    """The Speech Commands folder, on the local disk: the spoken-word fixture (quick) or
    the real v0.02, downloaded and extracted once (full)."""
    return _fixture_or_download(root, scratch, "speech", "speech-commands")


def speech_commands_tfrecords(
    sample_rate: int = 16000,
    words: str = COURSE_WORDS,
    root: str | Path | None = None,
    source: str | Path | None = None,
    scratch: str | Path | None = None,
) -> Path:
    """Converted Speech Commands TFRecords at ``sample_rate``, converting on first use.

    Args:
        sample_rate: 16000, 8000 or 4000.
        words: ``"sc09"`` (the ten digits), ``"all"`` or a comma-separated list.
        root: data folder (default: ``config.data_dir()``).
        source: a Speech Commands folder or archive to convert instead of the default.
        scratch: local folder for the download (default: see the module docstring).

    Returns:
        The folder with shards and ``manifest.json`` (read it with ``course_lib.data``).
    """
    from data_prep.speech_commands import convert_speech_commands

    out = _root(root) / "tfrecords" / f"speech_commands_{_words_tag(words)}_{sample_rate}"

    def convert() -> object:
        found = source if source is not None else speech_commands_source(root, scratch)
        extract_to = _scratch(root, scratch) / "downloads" / "archive_extracted"
        return convert_speech_commands(
            found, out, sample_rate=sample_rate, words=words, extract_to=extract_to
        )

    return _convert_once(out, convert)


def nsynth_source(root: str | Path | None = None, scratch: str | Path | None = None) -> Path:
    """The NSynth json/wav folder (``nsynth-valid/``, ``nsynth-test/``) on the local disk:
    fixture (quick) or download (full)."""
    return _fixture_or_download(root, scratch, "notes", "nsynth")


def nsynth_tfrecords(
    sample_rate: int = 16000,
    root: str | Path | None = None,
    max_per_family: int | None = None,
    source: str | Path | None = None,
    scratch: str | Path | None = None,
) -> Path:
    """Converted NSynth notes (4 s; label = instrument family), converting on first use.

    Args:
        sample_rate: target rate in Hz.
        root: data folder (default: ``config.data_dir()``).
        max_per_family: keep at most this many notes per family and split.
        source: a folder with ``nsynth-valid/`` and ``nsynth-test/`` instead of the default
            (the notes fixture in quick mode, the download in full mode).
        scratch: local folder for the download (default: see the module docstring).
    """
    from data_prep.nsynth import convert_nsynth

    cap = "" if max_per_family is None else f"_max{max_per_family}"
    out = _root(root) / "tfrecords" / f"nsynth_{sample_rate}{cap}"

    def convert() -> object:
        found = source if source is not None else nsynth_source(root, scratch)
        return convert_nsynth(found, out, sample_rate=sample_rate, max_per_family=max_per_family)

    return _convert_once(out, convert)


def music_source(root: str | Path | None = None, scratch: str | Path | None = None) -> Path:
    """The synthesized music fixture, in the GTZAN layout (``genres/<genre>/*.wav``), made
    on the local disk (its TFRecords go to the data folder).

    GTZAN cannot be downloaded, so notebooks 04 and 06 use this music in both modes
    unless the student points ``MUSIC_FOLDER`` at their own copy (or any folder of music
    in subfolders): the music sections always have something to play.
    """
    return _fixture(_scratch(root, scratch), "music") / "genres"


def music_folder(root: Path, source: str | Path, sample_rate: int, clip_seconds: float) -> Path:
    """Where :func:`music_tfrecords` keeps the conversion of the music folder ``source``
    under the data folder ``root``: named after the source's path, rate and clip length."""
    tag = re.sub(r"[^A-Za-z0-9]+", "-", Path(source).resolve().as_posix()).strip("-")[-60:]
    return root / "tfrecords" / f"music_{tag}_{sample_rate}_{clip_seconds:g}s"


def music_tfrecords(
    source: str | Path | None = None,
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    root: str | Path | None = None,
    scratch: str | Path | None = None,
) -> Path:
    """A music folder in the GTZAN layout (``genres/<genre>/*.wav``) converted into clips.

    Args:
        source: a ``genres`` folder (your GTZAN copy, or any music in subfolders);
            default: the synthesized music of :func:`music_source`.
        sample_rate: target rate in Hz.
        clip_seconds: clip length; long files are cut into clips.
        root: data folder (default: ``config.data_dir()``).
        scratch: local folder for the synthesized music (default: see the module docstring).
    """
    from data_prep.folder import convert_folder

    if source is None:
        source = music_source(root, scratch)
    out = music_folder(_root(root), source, sample_rate, clip_seconds)
    return _convert_once(
        out,
        lambda: convert_folder(source, out, sample_rate=sample_rate, clip_seconds=clip_seconds),
    )
