"""Run mode, folders, seeds, Colab detection and the distribution strategy.

Every notebook starts from here: ``COURSE_MODE`` picks the ``quick`` preset (CPU,
offline fixtures, tiny models; what CI runs) or the ``full`` one (Colab GPU, real
datasets, published model sizes). Nothing else in the kit reads the environment.

Used in: every notebook.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from pathlib import Path
from typing import Literal, Self

import numpy as np

Mode = Literal["quick", "full"]
MODES: tuple[Mode, ...] = ("quick", "full")
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = DRIVE_MOUNT / "MyDrive" / "generative_audio_course"


def mode() -> Mode:
    """The run mode from ``COURSE_MODE``: ``"quick"`` or ``"full"`` (the default).

    Raises:
        ValueError: if ``COURSE_MODE`` holds anything else.
    """
    value = os.environ.get("COURSE_MODE", "full").strip().lower() or "full"
    if value not in MODES:
        raise ValueError(f"COURSE_MODE must be 'quick' or 'full', not {value!r}.")
    return value  # type: ignore[return-value]


def is_quick() -> bool:
    """True in quick mode (CI, CPU, offline fixtures)."""
    return mode() == "quick"


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
    mode uses a ``quick/`` subfolder so fixtures never mix with real data.
    """
    if os.environ.get("COURSE_DATA_DIR"):
        root = Path(os.environ["COURSE_DATA_DIR"]).expanduser()
    elif in_colab() and drive_mounted():
        root = DRIVE_FOLDER / "data"
    elif in_colab():
        root = Path("/content/course_data")
    else:
        root = Path.home() / "course_data"
    folder = root / "quick" if is_quick() else root
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def checkpoint_dir(name: str) -> Path:
    """The folder for one model's checkpoints and saved ``.keras`` files.

    Args:
        name: a short model name such as ``"judge_sc09"``; becomes a subfolder.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"checkpoint name must be a plain folder name, not {name!r}.")
    folder = data_dir() / "checkpoints" / name
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

    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


class Presets:
    """Mixin for a notebook's frozen config dataclass with ``full`` and ``quick`` presets.

    Subclasses define the dataclass fields with the full-mode defaults and override
    :meth:`quick` to return the small variant (usually ``dataclasses.replace``).

    Example:
        >>> cfg = DiffusionConfig.for_mode()
    """

    @classmethod
    def full(cls) -> Self:
        """The full-mode preset: the dataclass defaults."""
        return cls()

    @classmethod
    def quick(cls) -> Self:
        """The quick-mode preset; subclasses shrink the sizes here."""
        return cls()

    @classmethod
    def for_mode(cls, run_mode: Mode | None = None) -> Self:
        """The preset for ``run_mode`` (default: :func:`mode`)."""
        chosen = run_mode or mode()
        if chosen not in MODES:
            raise ValueError(f"mode must be 'quick' or 'full', not {chosen!r}.")
        return cls.quick() if chosen == "quick" else cls.full()

    def tag(self) -> str:
        """A short hash of every setting, for folder names: a changed config never loads
        a stale checkpoint."""
        import hashlib
        import json

        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def replace(self, **changes) -> Self:
        """A copy with some fields changed (the config itself stays frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
