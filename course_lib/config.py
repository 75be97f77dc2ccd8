"""Run mode, folders, seeds, Colab detection and the distribution strategy.

Every notebook starts from here: ``COURSE_MODE`` picks the ``quick`` preset (CPU,
offline fixtures, tiny models; what CI runs), the ``laptop`` one (the same fixtures on a
2-core CPU, with models and a wall-clock training budget chosen so that the generators
learn their words: about 20 minutes of training per model), the ``full`` one (Colab GPU,
real datasets, published model sizes), or the ``rehearsal`` of the full one (the full
presets' shapes with tiny counts on tiny fixtures, so that CI runs every full-mode line
of every notebook on the CPU before a class runs it on Colab). Nothing else in the kit
reads the environment.

Used in: every notebook.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np

Mode = Literal["quick", "laptop", "full", "rehearsal"]
MODES: tuple[Mode, ...] = ("quick", "laptop", "full", "rehearsal")
FOLDER_OF_MODE: Mapping[str, str] = {"laptop": "quick"}
"""Modes that share another's data folder: the laptop preset reads quick mode's fixture
and uses its judge (its models have their own training folders, keyed on their tags)."""
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = DRIVE_MOUNT / "MyDrive" / "generative_audio_course"
DOWNLOAD_MIRROR_VARIABLE = "COURSE_DOWNLOAD_MIRROR"


def mode() -> Mode:
    """The run mode from ``COURSE_MODE``: ``"quick"``, ``"laptop"``, ``"full"`` (the
    default) or ``"rehearsal"``.

    Raises:
        ValueError: if ``COURSE_MODE`` holds anything else.
    """
    value = os.environ.get("COURSE_MODE", "full").strip().lower() or "full"
    if value not in MODES:
        raise ValueError(f"COURSE_MODE must be one of {', '.join(MODES)}, not {value!r}.")
    return value  # type: ignore[return-value]


def is_quick() -> bool:
    """True in quick mode (CI, CPU, offline fixtures)."""
    return mode() == "quick"


def uses_fixtures() -> bool:
    """True unless in full mode: quick mode, the laptop preset and the rehearsal read the
    offline fixtures (the rehearsal a few clips of each), full mode the published
    datasets."""
    return mode() != "full"


def _mode_folder(root: Path) -> Path:
    """``root`` in full mode, ``root / <mode>`` otherwise (the laptop preset shares
    quick mode's folder, :data:`FOLDER_OF_MODE`): fixtures and their models never mix
    with real data, nor the rehearsal's with quick mode's."""
    chosen = mode()
    return root if chosen == "full" else root / FOLDER_OF_MODE.get(chosen, chosen)


def in_colab() -> bool:
    """True when running inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def drive_mounted() -> bool:
    """True when Google Drive is mounted at ``/content/drive`` (Colab only)."""
    return (DRIVE_MOUNT / "MyDrive").is_dir()


def data_dir() -> Path:
    """The folder holding datasets and converted TFRecords, created if missing.

    Order: ``COURSE_DATA_DIR``; Google Drive when mounted (so a disconnect costs
    nothing); ``/content/course_data`` on Colab; ``~/course_data`` elsewhere. Quick
    mode and the rehearsal use a subfolder named after the mode (the laptop preset quick
    mode's), so fixtures never mix with real data.
    """
    if os.environ.get("COURSE_DATA_DIR"):
        root = Path(os.environ["COURSE_DATA_DIR"]).expanduser()
    elif in_colab() and drive_mounted():
        root = DRIVE_FOLDER / "data"
    elif in_colab():
        root = Path("/content/course_data")
    else:
        root = Path.home() / "course_data"
    folder = _mode_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


COLAB_SCRATCH_FOLDER = Path("/content/course_scratch")


def scratch_dir() -> Path:
    """The local-disk folder for downloaded archives, extracted WAV files and fixtures.

    Google Drive keeps only what is worth keeping: TFRecord shards and checkpoints
    (:func:`data_dir`). Extracting Speech Commands' 105,829 small WAV files onto the
    Drive mount is slow (and Colab's team advises against it), and neither the archives
    nor the WAV files are read again once converted, so they go here. Order:
    ``COURSE_SCRATCH_DIR``; ``/content/course_scratch`` on Colab (the runtime's own
    disk: it is wiped with the runtime, which costs a new download only when a
    conversion is still missing); ``data_dir() / "scratch"`` elsewhere (the data folder
    is on a local disk then, and keeping the download saves the next one). Quick mode
    and the rehearsal use a subfolder named after the mode, as :func:`data_dir` does.
    Created if missing.
    """
    if os.environ.get("COURSE_SCRATCH_DIR"):
        folder = _mode_folder(Path(os.environ["COURSE_SCRATCH_DIR"]).expanduser())
    elif in_colab():
        folder = _mode_folder(COLAB_SCRATCH_FOLDER)
    else:
        folder = data_dir() / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def on_drive(path: str | Path) -> bool:
    """True when ``path`` lies on the Google Drive mount (``/content/drive``)."""
    return Path(path).expanduser().absolute().is_relative_to(DRIVE_MOUNT)


def on_tpu() -> bool:
    """True on a TPU runtime (``COLAB_TPU_ADDR`` or ``TPU_NAME`` set)."""
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"))


def download_mirror() -> str | None:
    """A classroom mirror of the datasets' archives (``COURSE_DOWNLOAD_MIRROR``), or None."""
    return os.environ.get(DOWNLOAD_MIRROR_VARIABLE) or None


def checkpoint_root() -> Path:
    """The folder of every model's checkpoint folder (``data_dir() / "checkpoints"``)."""
    folder = data_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def checkpoint_dir(name: str) -> Path:
    """The folder for one model's checkpoints and saved ``.keras`` files.

    Args:
        name: a short model name such as ``"judge_sc09"``; becomes a subfolder.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"checkpoint name must be a plain folder name, not {name!r}.")
    folder = checkpoint_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def outputs_dir() -> Path:
    """The folder where notebooks write generated WAV files (``COURSE_OUTPUT_DIR``)."""
    folder = Path(os.environ.get("COURSE_OUTPUT_DIR", "outputs")).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras for a reproducible run."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def strategy():
    """The ``tf.distribute`` strategy to build and train models in.

    A TPU strategy on a Colab TPU runtime, a ``MirroredStrategy`` when there are
    several GPUs, and the default strategy (one device) otherwise. Build models
    inside ``with config.strategy().scope():``.
    """
    import tensorflow as tf

    if on_tpu():
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


NOT_TRAINING = "course_lib.not_training"  # dataclass field metadata key


def not_training(default: Any) -> Any:
    """A config field that does not change training, hence not part of :meth:`Presets.tag`.

    Use it for settings read only after training: sampling (guidance, DDIM steps,
    temperature), scoring (clip counts, splits), making audio (Griffin-Lim iterations),
    sweeps and plots. A field used both in training and afterwards is a training field:
    leave it unmarked.

    Example:
        >>> guidance: float = not_training(2.0)
    """
    return dataclasses.field(default=default, metadata={NOT_TRAINING: True})


def check_training_minutes(minutes: float) -> None:
    """Raise unless ``minutes`` is a config's wall-clock training budget: 0 for none (train
    the set number of epochs or steps), or more (the laptop preset's, over all sessions)."""
    if minutes < 0:
        raise ValueError(f"training_minutes must be >= 0, got {minutes}.")


def _training_values(value: Any) -> Any:
    """``value`` as JSON-ready data, nested dataclasses without their marked fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _training_values(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if not field.metadata.get(NOT_TRAINING)
        }
    if isinstance(value, (list, tuple)):
        return [_training_values(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _training_values(item) for key, item in value.items()}
    return value


class Presets:
    """Mixin for a notebook's frozen config dataclass with ``full``, ``quick``,
    ``laptop`` and ``rehearsal`` presets.

    Subclasses define the dataclass fields with the full-mode defaults and override
    :meth:`quick` to return the small variant (usually ``dataclasses.replace``), and
    :meth:`laptop` where a 2-core CPU and 20 minutes call for other sizes. The
    rehearsal is the full preset with the counts of :attr:`REHEARSAL_COUNTS` replaced
    (epochs, steps, clips, iterations): every shape, width and layer count stays full,
    so a rehearsal builds and runs the very models a T4 will, only briefly.

    Training folders are keyed on :meth:`tag`, a hash of the fields that change
    training. Every field counts unless it is declared with :func:`not_training`
    (``guidance: float = not_training(2.0)``), which marks a sampling, scoring,
    audio-making or display setting: changing it restores the trained model instead of
    training a new one. Forgetting the mark costs a retraining, never a stale model.
    Fields holding dataclasses are hashed field by field, with the same marks.

    Example:
        >>> cfg = DiffusionConfig.for_mode()
    """

    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = {}
    """Field -> tiny value: the counts the rehearsal shrinks (never a shape or a size)."""

    @classmethod
    def full(cls) -> Self:
        """The full-mode preset: the dataclass defaults."""
        return cls()

    @classmethod
    def rehearsal(cls) -> Self:
        """The rehearsal of the full preset: ``full()`` with :attr:`REHEARSAL_COUNTS`."""
        return cls.full().replace(**cls.REHEARSAL_COUNTS)

    @classmethod
    def quick(cls) -> Self:
        """The quick-mode preset; subclasses shrink the sizes here."""
        return cls()

    @classmethod
    def laptop(cls) -> Self:
        """The laptop preset (CPU, 2 cores, the quick fixtures): :meth:`quick` unless a
        subclass sizes its model for the laptop's training budget."""
        return cls.quick()

    @classmethod
    def for_mode(cls, run_mode: Mode | None = None) -> Self:
        """The preset for ``run_mode`` (default: :func:`mode`)."""
        chosen = run_mode or mode()
        if chosen not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {chosen!r}.")
        presets = {
            "quick": cls.quick,
            "laptop": cls.laptop,
            "full": cls.full,
            "rehearsal": cls.rehearsal,
        }
        return presets[chosen]()

    @classmethod
    def training_fields(cls) -> tuple[str, ...]:
        """Names of the fields that :meth:`tag` hashes (all but :func:`not_training` ones)."""
        return tuple(
            field.name
            for field in dataclasses.fields(cls)  # type: ignore[arg-type]
            if not field.metadata.get(NOT_TRAINING)
        )

    def tag(self) -> str:
        """A short hash of the training settings, for training folder names: a config
        that trains differently never loads a stale checkpoint, and one that differs only
        in :func:`not_training` fields restores the same training."""
        import hashlib
        import json

        text = json.dumps(_training_values(self), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def replace(self, **changes) -> Self:
        """A copy with some fields changed (the config itself stays frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
