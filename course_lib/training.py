"""Callbacks every notebook trains with: resume after a disconnect, NaN stop, samples.

- :func:`resume_callback`: Keras' ``BackupAndRestore`` in the model's checkpoint
  folder (Google Drive on Colab), so a restarted ``fit`` resumes at the epoch it
  reached, with its weights and optimizer state.
- :class:`HistoryLog` and :func:`read_history`: every epoch's metrics appended to a file
  in that folder, so the curves of a resumed training show all its epochs.
- :func:`resumable_fit`: ``fit`` with both, returning the whole history.
- :class:`StopOnNaN`: stops training on a NaN or infinite loss with a message that
  says what to do.
- :class:`AudioSamplesAtEpochEnd`: generates a few clips at the end of an epoch,
  writes them as WAV files and, in a notebook, plots and plays them.

Used in: 02_judge_and_metrics.ipynb to 06_wavenet.ipynb.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np


def resume_callback(folder: str | Path) -> keras.callbacks.Callback:
    """A callback that backs up training state each epoch and restores it on restart.

    The backup is kept after training ends, so running the same ``fit`` again after a
    disconnect (or after it finished) continues from the epoch reached instead of
    starting over.

    Args:
        folder: the model's checkpoint folder (see ``config.checkpoint_dir``).
    """
    folder = Path(folder) / "backup"
    folder.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.BackupAndRestore(str(folder), save_freq="epoch", delete_checkpoint=False)


HISTORY_NAME = "history.jsonl"


class HistoryLog(keras.callbacks.Callback):
    """Appends each finished epoch's metrics to ``folder/history.jsonl``.

    One JSON line per epoch: ``{"epoch": e, "loss": ..., ...}``. A later line for the
    same epoch (an epoch redone after a disconnect) replaces the earlier one in
    :func:`read_history`.
    """

    def __init__(self, folder: str | Path):
        super().__init__()
        self.path = Path(folder) / HISTORY_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}}
        with open(self.path, "a") as log:
            log.write(json.dumps(entry) + "\n")


def read_history(folder: str | Path) -> dict[str, list[float]]:
    """The per-epoch metrics logged by :class:`HistoryLog`, like ``fit().history``.

    Epochs are in order, each once (the last record wins); a metric missing from an
    epoch is NaN.
    """
    path = Path(folder) / HISTORY_NAME
    if not path.is_file():
        return {}
    by_epoch = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        by_epoch[entry.pop("epoch")] = entry
    names = list(dict.fromkeys(name for entry in by_epoch.values() for name in entry))
    epochs = sorted(by_epoch)
    return {name: [by_epoch[e].get(name, math.nan) for e in epochs] for name in names}


def resumable_fit(
    model: keras.Model,
    x,
    folder: str | Path,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    **fit_options,
) -> dict[str, list[float]]:
    """``model.fit`` that survives a disconnect, returning the history of every epoch.

    Training state is backed up to ``folder`` after every epoch (:func:`resume_callback`)
    and each epoch's metrics are logged there (:class:`HistoryLog`). Calling it again
    with the same folder continues from the last finished epoch; once all ``epochs`` are
    done it restores the trained weights and returns at once. Use one folder per model
    and training config (e.g. ``config.checkpoint_dir(name) / cfg.tag()``: the tag
    leaves out sampling and scoring settings, see ``config.Presets``).

    Args:
        model: a compiled model.
        x: the training data (a ``tf.data.Dataset``).
        folder: where the backup and the history log live.
        epochs: total epochs, counting those of earlier sessions.
        callbacks: more callbacks (after the backup and the log).
        **fit_options: passed to ``fit`` (``validation_data``, ``verbose``, ...).

    Returns:
        ``{"loss": [...], ...}`` for every epoch trained in this folder.
    """
    if hasattr(x, "element_spec"):  # a tf.data.Dataset shuffles itself
        fit_options.setdefault("shuffle", False)
    model.fit(
        x,
        epochs=epochs,
        callbacks=[resume_callback(folder), HistoryLog(folder), *callbacks],
        **fit_options,
    )
    return read_history(folder)


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    Args:
        monitor: the log key to check.
        raise_error: raise ``FloatingPointError`` instead of only stopping.

    Attributes:
        stopped_at: ``(epoch, batch)`` where the loss went bad, or None.
        message: the explanation printed when it stopped.
    """

    def __init__(self, monitor: str = "loss", raise_error: bool = False):
        super().__init__()
        self.monitor = monitor
        self.raise_error = raise_error
        self.stopped_at: tuple[int, int] | None = None
        self.message = ""
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or math.isfinite(float(value)):
            return
        self.stopped_at = (self._epoch, batch)
        self.message = (
            f"Training stopped: the {self.monitor} became {float(value)} at epoch "
            f"{self._epoch + 1}, batch {batch + 1}. Lower the learning rate, check the "
            "data for NaN or silent clips, or enable gradient clipping, then train again."
        )
        self.model.stop_training = True
        print(self.message)
        if self.raise_error:
            raise FloatingPointError(self.message)


class AudioSamplesAtEpochEnd(keras.callbacks.Callback):
    """Generates clips at epoch end, writes WAVs and (in a notebook) plays them.

    Args:
        generate: ``generate(model) -> array [clips, samples]`` or ``[clips, samples, 1]``.
        sample_rate: the clips' rate in Hz.
        folder: where ``epoch_{n:03d}_{i}.wav`` files go (None: write nothing).
        every: generate every this many epochs (and always after the last).
        show: display a waveform plot and players when running under IPython.

    Attributes:
        history: ``(epoch, clips)`` pairs generated so far.
    """

    def __init__(
        self,
        generate: Callable[[keras.Model], np.ndarray],
        sample_rate: int,
        folder: str | Path | None = None,
        every: int = 1,
        show: bool = True,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}.")
        self.generate = generate
        self.sample_rate = sample_rate
        self.folder = None if folder is None else Path(folder)
        self.every = every
        self.show = show
        self.history: list[tuple[int, np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        last_epoch = self.params.get("epochs", epoch + 1) - 1 if self.params else epoch
        if (epoch + 1) % self.every and epoch != last_epoch:
            return
        clips = np.asarray(self.generate(self.model), np.float32)
        clips = clips.reshape(clips.shape[0], -1)  # [c, n, 1] -> [c, n]
        self.history.append((epoch, clips))
        if self.folder is not None:
            from course_lib import audio

            for index, clip in enumerate(clips):
                audio.write_wav(
                    self.folder / f"epoch_{epoch + 1:03d}_{index}.wav", clip, self.sample_rate
                )
        if self.show and _in_ipython():
            from IPython.display import display

            from course_lib import audio

            print(f"samples after epoch {epoch + 1}:")
            display(audio.audio_grid(list(clips), self.sample_rate))


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
