"""The Google Drive footprint of the whole course in full mode, computed from the presets.

Run from the repository's root: ``python benchmarks/drive_footprint.py`` (about a minute
on two CPU cores: it builds each full-size network to count its weights; nothing is
trained). ``--words all`` adds the 35-word set that notebook 01 converts on request;
``--no-checkpoints`` skips the networks.

What lands on Drive (``config.data_dir()``) is the TFRecord folders that the notebooks
convert and the checkpoints they save. Archives, extracted WAV files and fixtures stay on
the runtime's disk (``config.scratch_dir()``) and are not counted.

- **TFRecords.** One record is the kit's serialized ``tf.train.Example``
  (``course_lib.data.serialize_example``: the clip as int16 PCM, 2 bytes per sample,
  plus ``sample_rate``, ``label``, ``label_name``, ``speaker`` and ``source``) and 16
  bytes of TFRecord framing (a length and two CRCs). :func:`record_bytes` serializes a
  silent clip with metadata of the dataset's real form, so bytes per clip x clips is the
  size of the shards (``tests/test_prepare.py`` checks it against fixture conversions).
  The clip counts are the published ones: Speech Commands v0.02 has 105,829 clips, of
  which SC09's ten digits are 38,908 (31,158 / 3,643 / 4,107 in train / validation /
  test) and "six" 3,860; NSynth's ``nsynth-valid`` has 12,678 notes and
  ``nsynth-test`` 4,096. The rates, clip lengths and NSynth cap come from the presets
  (``data_prep.prepare.course_sample_rates``, ``SpeechCommandsConfig``, ``VQConfig``);
  a NSynth cap (``max_per_family``) is counted as its upper bound. The background noise
  written beside each Speech Commands conversion (about 400 s) is included.
- **Checkpoints.** Each saved copy of a network holds its weights and Adam's two
  moments: ``count_params() x 4 bytes x 3`` (Keras' backup ``.weights.h5`` and a
  ``.keras`` file with its optimizer both measure that, plus a few kB). The judge keeps
  a backup and ``judge.keras``; the others one copy. The networks are built by
  ``course_tools.full_presets`` at their full sizes, as the rehearsal builds them.
- **Kept clips.** The clips the notebooks score are kept beside the checkpoints, batch
  by batch, so that a disconnected scoring cell resumes
  (``course_lib.resumable_generation``): float32, 4 bytes per sample (the ``.npz``
  headers add a few hundred bytes per batch). The counts come from the presets'
  ``score_clips`` (notebook 03 scores DDPM and DDIM) and notebook 07's clips per model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from course_lib import data
from data_prep import prepare

TFRECORD_FRAMING_BYTES = 16  # uint64 length, its masked CRC32C, the data's masked CRC32C
GB = 1e9
DRIVE_BUDGET_GB = 5.0

SC09_CLIPS = {  # Speech Commands v0.02, clips per word (the dataset's own counts)
    "zero": 4052,
    "one": 3890,
    "two": 3880,
    "three": 3727,
    "four": 3728,
    "five": 4052,
    "six": 3860,
    "seven": 3998,
    "eight": 3787,
    "nine": 3934,
}
ALL_WORDS_CLIPS = 105_829  # the 35 words of v0.02
BACKGROUND_NOISE_SECONDS = 400.0  # _background_noise_: six recordings of about 1 min
NSYNTH_CLIPS = {"nsynth-valid": 12_678, "nsynth-test": 4_096}
NSYNTH_FAMILIES = 11
NSYNTH_OUTPUT_SPLITS = {"nsynth-valid": 2, "nsynth-test": 1}  # train + validation; test
# Metadata of the real form, so a record's size is the real one to a few bytes.
SPEECH_METADATA = ("seven", "0a7c2a8d", "seven/0a7c2a8d_nohash_0.wav")
NSYNTH_METADATA = (
    "keyboard",
    "keyboard_acoustic_004",
    "nsynth-valid/audio/keyboard_acoustic_004-060-127.wav",
)
MUSIC_METADATA = ("classical", "", "classical/classical.00000.wav")


def record_bytes(clip_samples: int, sample_rate: int, metadata: tuple[str, str, str]) -> int:
    """Bytes of one record in a shard: a ``clip_samples``-sample clip serialized as the kit
    stores it, with ``metadata = (label_name, speaker, source)``, plus the TFRecord framing.

    Raises:
        ValueError: ``clip_samples`` or ``sample_rate`` is not positive.
    """
    if clip_samples < 1 or sample_rate < 1:
        raise ValueError(
            f"clip_samples and sample_rate must be positive, got {clip_samples} and {sample_rate}."
        )
    label_name, speaker, source = metadata
    example = data.serialize_example(
        bytes(2 * clip_samples), sample_rate, 9, label_name, speaker, source
    )
    return len(example) + TFRECORD_FRAMING_BYTES


@dataclasses.dataclass(frozen=True)
class Conversion:
    """One TFRecord folder on Drive.

    Attributes:
        name: what it holds, e.g. ``"SC09 at 16 kHz"``.
        notebooks: the notebooks that read it.
        clips: records in its shards (an upper bound when ``at_most``).
        clip_samples: samples per clip.
        sample_rate: its rate in Hz.
        metadata: ``(label_name, speaker, source)`` of a typical record.
        noise_seconds: seconds of background noise written beside the shards.
        at_most: True when ``clips`` is an upper bound (a capped NSynth conversion).
    """

    name: str
    notebooks: str
    clips: int
    clip_samples: int
    sample_rate: int
    metadata: tuple[str, str, str]
    noise_seconds: float = 0.0
    at_most: bool = False

    @property
    def bytes_per_clip(self) -> int:
        return record_bytes(self.clip_samples, self.sample_rate, self.metadata)

    @property
    def shard_bytes(self) -> int:
        """Bytes of the shards: bytes per clip x clips."""
        return self.bytes_per_clip * self.clips

    @property
    def bytes(self) -> int:
        """Shards plus the background noise (int16 WAV: 2 bytes per sample)."""
        return self.shard_bytes + round(2 * self.noise_seconds * self.sample_rate)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One checkpoint folder on Drive: ``copies`` saved copies of a network.

    Attributes:
        name: the folder under ``config.checkpoint_root()``.
        notebook: the notebook that saves it.
        params: ``count_params()`` of the network.
        copies: copies saved (each with Adam's state).
    """

    name: str
    notebook: str
    params: int
    copies: int = 1

    @property
    def bytes(self) -> int:
        return checkpoint_bytes(self.params, self.copies)


def checkpoint_bytes(params: int, copies: int = 1) -> int:
    """Bytes of ``copies`` saved copies of a network of ``params`` float32 weights trained
    with Adam: weights, first and second moments (4 bytes each)."""
    if params < 0 or copies < 0:
        raise ValueError(f"params and copies must be >= 0, got {params} and {copies}.")
    return params * 4 * 3 * copies


@dataclasses.dataclass(frozen=True)
class KeptClips:
    """Generated clips kept on Drive for scoring (``course_lib.resumable_generation``).

    Attributes:
        name: which clips.
        notebook: the notebook that makes them.
        clips: how many.
        clip_samples: samples per clip.
    """

    name: str
    notebook: str
    clips: int
    clip_samples: int

    @property
    def bytes(self) -> int:
        """float32 samples: ``clips x clip_samples x 4``."""
        return self.clips * self.clip_samples * 4


def course_kept_clips() -> list[KeptClips]:
    """The scored clips the notebooks keep in full mode (all at 1 s)."""
    from course_lib.comparison import ComparisonConfig
    from course_lib.diffusion.settings import DiffusionConfig
    from course_lib.vae.settings import VAEConfig
    from course_lib.wavenet.settings import WaveNetConfig

    diffusion, vae, wavenet = DiffusionConfig.full(), VAEConfig.full(), WaveNetConfig.full()
    wavenet_samples = int(wavenet.generate_seconds * wavenet.sample_rate)
    return [
        KeptClips(
            "diffusion: DDPM and DDIM", "03", 2 * diffusion.score_clips, diffusion.clip_samples
        ),
        KeptClips("VAE", "04", vae.score_clips, vae.sample_rate),
        KeptClips("WaveNet", "06", wavenet.score_clips, wavenet_samples),
        KeptClips(
            "four models",
            "07",
            4 * ComparisonConfig.full().clips_per_model,
            diffusion.clip_samples,
        ),
    ]


def nsynth_clips(max_per_family: int | None) -> tuple[int, bool]:
    """NSynth notes converted with ``max_per_family`` (at most that many per family and
    output split), and whether the count is an upper bound."""
    if max_per_family is None:
        return sum(NSYNTH_CLIPS.values()), False
    capped = sum(
        min(total, max_per_family * NSYNTH_FAMILIES * NSYNTH_OUTPUT_SPLITS[folder])
        for folder, total in NSYNTH_CLIPS.items()
    )
    return capped, True


def course_conversions(words: str = prepare.COURSE_WORDS) -> list[Conversion]:
    """The TFRecord folders the notebooks convert in full mode, with notebook 01's
    ``words`` (``"sc09"``, the default, or ``"all"``)."""
    from course_lib.vq.settings import VQConfig
    from data_prep.fixture_music import CLIP_SECONDS, GENRES
    from data_prep.fixtures import DEFAULT_PER_CLASS

    if words not in ("sc09", "all"):
        raise ValueError(f"words must be 'sc09' or 'all', not {words!r}.")
    sc09 = sum(SC09_CLIPS.values())
    cfg = prepare.SpeechCommandsConfig.full()
    rates = prepare.course_sample_rates("full")
    rows = [
        Conversion(
            f"SC09 at {rate // 1000} kHz",
            "01-07",
            sc09,
            rate,
            rate,
            SPEECH_METADATA,
            BACKGROUND_NOISE_SECONDS,
        )
        for rate in rates
    ]
    if words == "all":
        rows.append(
            Conversion(
                "35 words at 16 kHz",
                "01",
                ALL_WORDS_CLIPS,
                16000,
                16000,
                SPEECH_METADATA,
                BACKGROUND_NOISE_SECONDS,
            )
        )
    word = prepare.comparison_word(words)
    rows += [
        Conversion(
            f'"{word}" at {rate // 1000} kHz',
            "01",
            SC09_CLIPS[word],
            rate,
            rate,
            SPEECH_METADATA,
            BACKGROUND_NOISE_SECONDS,
        )
        for rate in cfg.sample_rates
        if rate not in rates and rate != prepare.JUDGE_SAMPLE_RATE
    ]
    vq = VQConfig.full()
    notes, at_most = nsynth_clips(vq.max_per_family)
    rows.append(
        Conversion(
            f"NSynth at {vq.sample_rate // 1000} kHz",
            "05",
            notes,
            vq.clip_samples,
            vq.sample_rate,
            NSYNTH_METADATA,
            at_most=at_most,
        )
    )
    music_clips = len(GENRES) * DEFAULT_PER_CLASS["music"] * int(CLIP_SECONDS)
    rows.append(
        Conversion(
            "music (synthesized) at 16 kHz", "04, 06", music_clips, 16000, 16000, MUSIC_METADATA
        )
    )
    return rows


def course_checkpoints() -> list[Checkpoint]:
    """The checkpoint folders the notebooks save in full mode, their networks built at
    full size (TensorFlow; about a minute on a CPU)."""
    from course_tools import full_presets

    def params(builder, **options) -> int:
        return int(builder(1, **options).model.count_params())

    judge = params(full_presets.judge)
    vq_notes = params(full_presets.vq_vae)
    wavenet = params(full_presets.wavenet)
    return [
        Checkpoint("judge (SC09): backup + judge.keras", "02", judge, 2),
        Checkpoint("judge (music genres): backup + judge.keras", "04", judge, 2),
        Checkpoint("diffusion_sc09", "03", params(full_presets.diffusion)),
        Checkpoint("vae_speech", "04", params(full_presets.vae)),
        Checkpoint("vq_digits", "05", params(full_presets.vq_vae, digits=True)),
        Checkpoint("vq_notes", "05", vq_notes),
        Checkpoint("vq_inpainting (saved effect)", "05", vq_notes),
        Checkpoint(
            "vq_speech", "07", params(full_presets.vq_vae, dataset="speech", clip_seconds=1.0)
        ),
        Checkpoint("wavenet_sc09", "06", wavenet),
        Checkpoint("wavenet_music", "06", wavenet),
    ]


def footprint_table(
    conversions: list[Conversion],
    checkpoints: list[Checkpoint],
    kept: Sequence[KeptClips] = (),
) -> str:
    """A Markdown table of every folder on Drive, with subtotals and the total in GB."""
    lines = [
        "| on Google Drive | notebooks | clips / weights | bytes per clip / copies | GB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in conversions:
        clips = f"{'at most ' if row.at_most else ''}{row.clips:,}"
        lines.append(
            f"| {row.name} | {row.notebooks} | {clips} | {row.bytes_per_clip:,} | "
            f"{row.bytes / GB:.2f} |"
        )
    datasets = sum(row.bytes for row in conversions)
    lines.append(f"| **TFRecords** | | | | **{datasets / GB:.2f}** |")
    for checkpoint in checkpoints:
        lines.append(
            f"| {checkpoint.name} | {checkpoint.notebook} | {checkpoint.params:,} | "
            f"{checkpoint.copies} | {checkpoint.bytes / GB:.3f} |"
        )
    saved = sum(checkpoint.bytes for checkpoint in checkpoints)
    if checkpoints:
        lines.append(f"| **checkpoints** | | | | **{saved / GB:.2f}** |")
    for clips in kept:
        lines.append(
            f"| kept clips: {clips.name} | {clips.notebook} | {clips.clips:,} | "
            f"{clips.clip_samples * 4:,} | {clips.bytes / GB:.3f} |"
        )
    generated = sum(clips.bytes for clips in kept)
    if kept:
        lines.append(f"| **kept clips** | | | | **{generated / GB:.2f}** |")
    lines.append(f"| **total** | | | | **{(datasets + saved + generated) / GB:.2f}** |")
    return "\n".join(lines)


def total_bytes(
    conversions: list[Conversion],
    checkpoints: list[Checkpoint],
    kept: Sequence[KeptClips] = (),
) -> int:
    """Everything the course keeps on Drive, in bytes."""
    return (
        sum(row.bytes for row in conversions)
        + sum(row.bytes for row in checkpoints)
        + sum(clips.bytes for clips in kept)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", choices=("sc09", "all"), default="sc09")
    parser.add_argument("--no-checkpoints", action="store_true", help="skip building networks")
    args = parser.parse_args(argv)
    conversions = course_conversions(args.words)
    checkpoints = [] if args.no_checkpoints else course_checkpoints()
    kept = course_kept_clips()
    print(footprint_table(conversions, checkpoints, kept))
    total = total_bytes(conversions, checkpoints, kept) / GB
    verdict = "within" if total <= DRIVE_BUDGET_GB else "OVER"
    print(
        f"\nfull mode, words={args.words}: {total:.2f} GB, "
        f"{verdict} the {DRIVE_BUDGET_GB:g} GB budget"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
