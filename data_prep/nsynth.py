"""NSynth's json/wav archives to the kit's TFRecords.

NSynth (Engel et al. 2017) ships each split as a folder ``nsynth-<split>/`` holding
``examples.json`` (``note_str`` -> metadata such as ``instrument_str``,
``instrument_family_str``, ``pitch``, ``velocity``) and ``audio/<note_str>.wav`` (4 s,
16 kHz, mono). The course uses the two small archives:

- ``train`` and ``validation`` from ``nsynth-valid`` (12,678 notes), with the validation
  split holding out whole instruments (``validation_fraction`` of the instruments of each
  family, chosen by a hash of the instrument name), so validation sounds come from
  instruments never heard in training;
- ``test`` from ``nsynth-test`` (4,096 notes), whose instruments are new as well.

Labels are the instrument families (``instrument_family_str``) found, in NSynth's own
order; the speaker field holds ``instrument_str``. Notes listed in ``examples.json``
whose wav is missing or unusable, and wavs that ``examples.json`` does not list, are
skipped with a reason. Conversion, resuming and reporting are those of
:mod:`data_prep.convert`.

Used in: 05_vq_vae_inpainting.ipynb (through :mod:`data_prep.prepare`).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from data_prep.convert import (
    ConversionReport,
    Skipped,
    SourceFile,
    convert_files,
    list_files,
    not_audio_reason,
)

SPLIT_FOLDERS = ("nsynth-valid", "nsynth-test")
NOTE_SECONDS = 4.0
CAP_SEED = 1234

# NSynth's label vocabularies, in NSynth's index order (the integer fields of
# examples.json index these: instrument_family, instrument_source, qualities).
NSYNTH_FAMILIES = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
NSYNTH_SOURCES = ("acoustic", "electronic", "synthetic")
NSYNTH_QUALITIES = (
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
)


def read_examples(split_folder: Path) -> dict[str, dict]:
    """``examples.json`` of one NSynth split folder.

    Raises:
        ValueError: the file is not a JSON object of note entries.
    """
    path = split_folder / "examples.json"
    try:
        examples = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(examples, dict):
        raise ValueError(f"{path} must map note names to their metadata.")
    return examples


def held_out_instruments(instruments_by_family: dict[str, set[str]], fraction: float) -> set[str]:
    """The instruments that form the validation split: in every family with at least two
    instruments, ``max(1, round(fraction * n))`` of its ``n`` instruments (never all),
    those whose SHA-1 of the name is smallest (stable when instruments are added)."""
    held_out = set()
    for instruments in instruments_by_family.values():
        if len(instruments) < 2:
            continue
        count = min(max(1, round(fraction * len(instruments))), len(instruments) - 1)
        ranked = sorted(instruments, key=lambda name: hashlib.sha1(name.encode()).hexdigest())
        held_out.update(ranked[:count])
    return held_out


def convert_nsynth(
    source: str | Path,
    out: str | Path,
    sample_rate: int = 16000,
    max_per_family: int | None = None,
    validation_fraction: float = 0.1,
    workers: int | None = None,
    progress: bool = True,
) -> ConversionReport:
    """Convert NSynth's ``nsynth-valid`` and ``nsynth-test`` folders into sharded TFRecords.

    Args:
        source: the folder holding ``nsynth-valid/`` and/or ``nsynth-test/``.
        out: output folder (shards and ``manifest.json``).
        sample_rate: target rate in Hz (NSynth is 16 kHz; others are resampled).
        max_per_family: keep at most this many notes per family in each output split
            (chosen at random with a fixed seed); None keeps all.
        validation_fraction: share of each family's ``nsynth-valid`` instruments held out
            as the validation split.
        workers: decoding processes (see :func:`data_prep.convert.default_workers`).
        progress: show a progress bar.

    Returns:
        The :class:`~data_prep.convert.ConversionReport` (also in ``manifest.json``).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: a bad setting, no NSynth split folder, or no usable notes.
    """
    source, out = Path(source), Path(out)
    if not 1000 <= sample_rate <= 48000:
        raise ValueError(f"--sample-rate {sample_rate} is outside 1000..48000 Hz.")
    if max_per_family is not None and max_per_family < 1:
        raise ValueError(f"--max-per-family must be at least 1, got {max_per_family}.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    if not source.exists():
        raise FileNotFoundError(f"NSynth source {source} does not exist.")
    present = [name for name in SPLIT_FOLDERS if (source / name / "examples.json").is_file()]
    if not present:
        raise ValueError(
            f"{source} holds neither nsynth-valid/examples.json nor nsynth-test/examples.json: "
            "point --source at the folder that contains the extracted NSynth archives."
        )

    notes, skipped = [], []  # notes: (split folder, note_str, family, instrument)
    for split_folder in present:
        examples = read_examples(source / split_folder)
        listed = set()
        for note_str, entry in sorted(examples.items()):
            relative = f"{split_folder}/audio/{note_str}.wav"
            listed.add(f"{note_str}.wav")
            family = entry.get("instrument_family_str") if isinstance(entry, dict) else None
            if not family:
                skipped.append(Skipped(relative, "examples.json gives no instrument_family_str"))
            elif not (source / relative).is_file():
                skipped.append(Skipped(relative, "listed in examples.json but the wav is missing"))
            else:
                instrument = str(entry.get("instrument_str", ""))
                notes.append((split_folder, note_str, str(family), instrument))
        audio_folder = source / split_folder / "audio"
        if audio_folder.is_dir():
            audio_files, other_files = list_files(audio_folder)
            skipped += [
                Skipped(f"{split_folder}/audio/{name}", "not listed in examples.json")
                for name in audio_files
                if name not in listed
            ]
            skipped += [
                Skipped(f"{split_folder}/audio/{name}", not_audio_reason(name))
                for name in other_files
            ]
    if not notes:
        raise ValueError(f"no usable notes in {source}: every entry was skipped.")

    found = {family for _, _, family, _ in notes}
    labels = [family for family in NSYNTH_FAMILIES if family in found]
    labels += sorted(found - set(NSYNTH_FAMILIES))
    training_instruments: dict[str, set[str]] = {}
    for split_folder, _, family, instrument in notes:
        if split_folder == "nsynth-valid":
            training_instruments.setdefault(family, set()).add(instrument)
    held_out = held_out_instruments(training_instruments, validation_fraction)

    by_split_family: dict[tuple[str, str], list[SourceFile]] = {}
    for split_folder, note_str, family, instrument in notes:
        if split_folder == "nsynth-test":
            split = "test"
        else:
            split = "validation" if instrument in held_out else "train"
        item = SourceFile(
            source / split_folder / "audio" / f"{note_str}.wav",
            f"{split_folder}/audio/{note_str}.wav",
            labels.index(family),
            split,
            instrument,
        )
        by_split_family.setdefault((split, family), []).append(item)
    files = []
    for key in sorted(by_split_family):
        members = by_split_family[key]
        if max_per_family is not None and len(members) > max_per_family:
            members = random.Random(f"{CAP_SEED}-{key}").sample(members, max_per_family)
        files.extend(members)

    cap = "" if max_per_family is None else f" max_per_family={max_per_family}"
    return convert_files(
        files,
        out,
        labels,
        sample_rate,
        clip_samples=round(NOTE_SECONDS * sample_rate),
        source_description=f"nsynth:{source}{cap}",
        skipped=skipped,
        workers=workers,
        progress=progress,
    )
