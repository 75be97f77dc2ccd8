"""Training that survives a disconnect, logs its energy, and restores once it is done.

- :func:`resumable_callbacks`: the callbacks that make ``fit`` resumable in a model's
  training folder (Google Drive on Colab): :func:`resume_callback` (Keras'
  ``BackupAndRestore``: a restarted ``fit`` resumes at the epoch it reached, with its
  weights and optimizer state) and :class:`HistoryLog` (every epoch's metrics appended to
  a file, :func:`read_history`, so the curves of a resumed training show all its epochs).
  Once all epochs are done, the same ``fit`` trains nothing and only restores the
  weights: a rerun of a finished training is a restore.
- :func:`log_energy` and :func:`read_energy`: the energy of each session that trains
  (``course_lib.energy``), summed in the training folder.
- :func:`train_or_restore`: the three together, in one call: what notebook 07 and the
  judge use to get a model back, and what the training cells of notebooks 03, 04 and 06
  show step by step. :func:`resumable_fit` is the same without the energy.
- :class:`StopOnNaN`: stops training on a NaN or infinite loss with a message that
  says what to do.
- :class:`StopAfter`: a wall-clock budget instead of a number of epochs, for one ``fit``;
  :class:`TimeBudget` the same for a resumable training (the laptop preset's 20 minutes),
  counted across sessions in the training folder, with :func:`epochs_to_fit`.
- :class:`AudioSamplesAtEpochEnd`: generates a few clips at the end of an epoch,
  writes them as WAV files and, in a notebook, plots and plays them.
- :func:`compile_model`: ``compile`` with the optimizer's variables made at once, so that
  the first ``fit`` traces its training step once, not twice.

Used in: 02_judge_and_metrics.ipynb to 07_compare_models.ipynb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from course_lib import energy


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer, **options) -> None:
    """``model.compile(optimizer, **options)``, then the optimizer's variables made now.

    Keras makes an optimizer's variables (Adam's two moments for each weight) in the first
    training step, and a ``tf.function`` that makes variables is traced twice: the first
    ``fit`` would build the whole training graph twice. With them made here, it is built
    once. Measured on notebook 06's full WaveNet (217 weights, 14,500 graph operations per
    step; ``fit`` of one step on a busy 2-core CPU): 76 s of CPU for the first ``fit``, 36 s
    with this. Metrics given as names (``"accuracy"``) are made in the first step too:
    pass metric objects (``keras.metrics.SparseCategoricalAccuracy(name="accuracy")``).

    Call it where the model was built (inside the same ``strategy.scope()``).

    Args:
        model: a built model (its weights exist).
        optimizer: its optimizer (a ``LossScaleOptimizer`` too).
        **options: the rest of ``compile``'s arguments (``loss``, ``metrics``, ``jit_compile``).
    """
    model.compile(optimizer=optimizer, **options)
    model.optimizer.build(model.trainable_variables)


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
ENERGY_NAME = "training_energy.json"
SECONDS_NAME = "training_seconds.json"


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
    by_epoch = _epochs_logged(folder)
    names = list(dict.fromkeys(name for entry in by_epoch.values() for name in entry))
    epochs = sorted(by_epoch)
    return {name: [by_epoch[e].get(name, math.nan) for e in epochs] for name in names}


def epochs_done(folder: str | Path) -> int:
    """How many epochs :class:`HistoryLog` has logged in ``folder`` (0 for a new one)."""
    return len(_epochs_logged(folder))


def _epochs_logged(folder: str | Path) -> dict[int, dict[str, float]]:
    path = Path(folder) / HISTORY_NAME
    if not path.is_file():
        return {}
    by_epoch = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        by_epoch[entry.pop("epoch")] = entry
    return by_epoch


def training_seconds(folder: str | Path) -> float:
    """Wall-clock seconds of the epochs finished in ``folder``, over every session
    (:class:`TimeBudget` counts them; 0 for a new folder or one trained without a budget)."""
    path = Path(folder) / SECONDS_NAME
    return float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0


class TimeBudget(keras.callbacks.Callback):
    """Stops a resumable training once its epochs have taken ``minutes`` of wall-clock
    time, counted across sessions in ``folder/training_seconds.json``.

    An epoch's time is added when it ends, as :class:`HistoryLog` adds its metrics, so an
    epoch cut short by a disconnect counts neither. Training stops at the end of the epoch
    that spends the budget (it overshoots by less than one epoch). Give ``fit`` the
    epochs of :func:`epochs_to_fit`, so that a rerun after the budget is spent only
    restores the weights.

    Args:
        folder: the training folder.
        minutes: the budget, > 0.
        clock: the time source (``time.perf_counter``; tests pass a fake one).
    """

    def __init__(
        self, folder: str | Path, minutes: float, clock: Callable[[], float] = time.perf_counter
    ):
        super().__init__()
        if not minutes > 0:
            raise ValueError(f"the time budget must be > 0 minutes, got {minutes}.")
        self.path = Path(folder) / SECONDS_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.seconds = 60.0 * minutes
        self.clock = clock
        self._spent = 0.0
        self._epoch_started = 0.0

    def on_train_begin(self, logs=None):
        self._spent = training_seconds(self.path.parent)  # earlier sessions', read once

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        self._spent += self.clock() - self._epoch_started
        self.path.write_text(json.dumps({"seconds": self._spent}))
        if self._spent >= self.seconds:
            self.model.stop_training = True


def epochs_to_fit(folder: str | Path, epochs: int, minutes: float = 0.0) -> int:
    """The ``epochs`` to give a resumable ``fit`` in ``folder``: ``epochs``, or the epochs
    already done once a time budget of ``minutes`` (> 0) is spent, so that ``fit`` then
    only restores the weights instead of training one more epoch."""
    if minutes > 0 and training_seconds(folder) >= 60.0 * minutes:
        return min(epochs, epochs_done(folder))
    return epochs


def resumable_callbacks(folder: str | Path, minutes: float = 0.0) -> list[keras.callbacks.Callback]:
    """The callbacks that make ``fit`` resumable in ``folder``.

    ``[resume_callback(folder), HistoryLog(folder)]``, and :class:`TimeBudget` when
    ``minutes`` > 0: give them to ``fit`` with the total number of epochs (with a
    budget, :func:`epochs_to_fit`), and running the same cell again continues from the
    last finished epoch (after a disconnect) or, once all epochs are done or the budget
    is spent, restores the trained weights and trains nothing. Use one folder per model
    and training config (``config.checkpoint_dir(name) / cfg.tag()``: the tag leaves
    out sampling and scoring settings, see ``config.Presets``).

    Example:
        >>> model.fit(train, epochs=cfg.epochs, callbacks=resumable_callbacks(folder))
    """
    budget = [TimeBudget(folder, minutes)] if minutes > 0 else []
    return [resume_callback(folder), HistoryLog(folder), *budget]


def resumable_fit(
    model: keras.Model,
    x,
    folder: str | Path,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    *,
    minutes: float = 0.0,
    **fit_options,
) -> dict[str, list[float]]:
    """``model.fit`` with :func:`resumable_callbacks`, returning the history of every epoch.

    Args:
        model: a compiled model.
        x: the training data (a ``tf.data.Dataset`` or arrays).
        folder: where the backup and the history log live.
        epochs: total epochs, counting those of earlier sessions.
        callbacks: more callbacks (after the backup and the log).
        minutes: a wall-clock budget over all sessions (:class:`TimeBudget`; 0: none):
            once spent, a rerun only restores (:func:`epochs_to_fit`).
        **fit_options: passed to ``fit`` (``validation_data``, ``batch_size``, ``verbose``, ...).

    Returns:
        ``{"loss": [...], ...}`` for every epoch trained in this folder.
    """
    model.fit(
        x,
        epochs=epochs_to_fit(folder, epochs, minutes),
        callbacks=[*resumable_callbacks(folder, minutes), *callbacks],
        **_fit_options_for(x, fit_options),
    )
    return read_history(folder)


def _fit_options_for(data, fit_options: dict[str, Any]) -> dict[str, Any]:
    """``fit_options`` with ``shuffle=False`` for a ``tf.data.Dataset`` (which shuffles
    itself), unless the caller chose."""
    if hasattr(data, "element_spec"):
        return {"shuffle": False, **fit_options}
    return fit_options


@contextlib.contextmanager
def log_energy(folder: str | Path, measure: bool = True) -> Iterator[energy.EnergyReport | None]:
    """Measure the energy of the training in the ``with`` block and add it to the
    folder's total (``training_energy.json``, :func:`read_energy`).

    A session interrupted by an error is added too: the epochs it finished are kept.

    Args:
        folder: the training folder.
        measure: False for a finished training, whose ``fit`` only restores the weights:
            nothing is measured or added (no tracker is started).

    Yields:
        The session's ``energy.EnergyReport`` (filled in when the block ends), or None.
    """
    if not measure:
        yield None
        return
    report = None
    try:
        with energy.measure_energy("training") as report:
            yield report
    finally:
        if report is not None:
            add_energy(folder, report)


def read_energy(folder: str | Path) -> energy.EnergyReport:
    """The energy of every session that trained in ``folder`` (``measured`` is False when
    none was measured)."""
    path = Path(folder) / ENERGY_NAME
    if path.is_file():
        return energy.EnergyReport(**json.loads(path.read_text()))
    return energy.EnergyReport("training", reason="no training session was measured")


def add_energy(folder: str | Path, report: energy.EnergyReport) -> energy.EnergyReport:
    """Add one session's energy to the folder's total and return the new total."""
    total = read_energy(folder)
    if report.measured:
        total = energy.EnergyReport(
            "training",
            seconds=total.seconds + report.seconds,
            energy_kwh=(total.energy_kwh or 0.0) + report.energy_kwh,
            co2_kg=(total.co2_kg or 0.0) + report.co2_kg,
            method=report.method,
            measured=True,
        )
    else:
        total = dataclasses.replace(
            total, seconds=total.seconds + report.seconds, reason=report.reason
        )
    path = Path(folder) / ENERGY_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(total)))
    return total


@dataclasses.dataclass
class Trained:
    """A trained model and how it got there (see :func:`train_or_restore`).

    Attributes:
        model: the Keras model.
        history: per-epoch metrics of every session (``fit().history`` layout).
        training_energy: energy of all training sessions (``measured`` is False when
            no session measured it).
        folder: the training folder.
        extras: model-specific companions (e.g. the Naive Bayes prior of a VQ-VAE).
    """

    model: Any
    history: dict[str, list[float]]
    training_energy: energy.EnergyReport
    folder: Path
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


def train_or_restore(
    model: keras.Model,
    data,
    folder: str | Path,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    *,
    backup: bool = True,
    minutes: float = 0.0,
    **fit_options,
) -> Trained:
    """Train ``model`` in ``folder`` up to ``epochs`` (resuming after a disconnect), or
    restore it when that is done; the energy of a session that trains is logged.

    The one way every model of the course is trained or got back (the judge, diffusion,
    the VAE, the VQ-VAE and WaveNet). Written out, as in a notebook's training cell::

        epochs = training.epochs_to_fit(folder, epochs, minutes)
        finished = training.epochs_done(folder) >= epochs  # then fit only restores
        with training.log_energy(folder, measure=not finished):
            model.fit(
                data,
                epochs=epochs,
                callbacks=[*training.resumable_callbacks(folder, minutes), *callbacks],
            )

    Args:
        model: a compiled model, built in ``config.strategy()``'s scope.
        data: the training data (a ``tf.data.Dataset`` or arrays).
        folder: the training folder (``config.checkpoint_dir(name) / cfg.tag()``).
        epochs: with ``backup``, all epochs, those of earlier sessions included.
        callbacks: more callbacks (``StopOnNaN``, samples, ...).
        backup: True: :func:`resumable_callbacks` keep the training state in ``folder``,
            and ``fit`` itself resumes or restores. False: the model keeps its own
            checkpoints, as WaveNet's step checkpoints do (a callback in ``callbacks``
            saves them and the caller restored ``model`` from the last one); then
            ``epochs`` counts the epochs left, and 0 restores.
        minutes: with ``backup``, a wall-clock budget over all sessions (0: none):
            training stops once it is spent (:class:`TimeBudget`), even before ``epochs``.
        **fit_options: passed to ``fit`` (``validation_data``, ``steps_per_epoch``, ...).
    """
    folder = Path(folder)
    if minutes > 0 and not backup:
        raise ValueError("a time budget needs backup=True: it is counted in the folder.")
    if backup:
        left = epochs_to_fit(folder, epochs, minutes) - epochs_done(folder)
        with log_energy(folder, measure=left > 0):
            history = resumable_fit(
                model, data, folder, epochs, callbacks, minutes=minutes, **fit_options
            )
        return Trained(model, history, read_energy(folder), folder)
    with log_energy(folder, measure=epochs > 0):
        model.fit(
            data, epochs=epochs, callbacks=list(callbacks), **_fit_options_for(data, fit_options)
        )
    return Trained(model, read_history(folder), read_energy(folder), folder)


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


class StopAfter(keras.callbacks.Callback):
    """Stops training once ``seconds`` of wall-clock time have passed since ``fit``
    began: a fixed time budget instead of a number of epochs (the batch running when
    the time is up still finishes).

    Args:
        seconds: the budget, > 0.
        clock: the time source (``time.perf_counter``; tests pass a fake one).

    Attributes:
        steps: training steps taken in the last ``fit``.
        elapsed: seconds from the start of the last ``fit`` to its last step.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"the time budget must be > 0 seconds, got {seconds}.")
        self.seconds = float(seconds)
        self.clock = clock
        self.steps = 0
        self.elapsed = 0.0
        self._started = 0.0

    def on_train_begin(self, logs=None):
        self._started = self.clock()
        self.steps = 0
        self.elapsed = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.elapsed = self.clock() - self._started
        if self.elapsed >= self.seconds:
            self.model.stop_training = True


class AudioSamplesAtEpochEnd(keras.callbacks.Callback):
    """Generates clips at epoch end, writes WAVs and (in a notebook) plays them.

    Args:
        generate: ``generate(model) -> array [clips, samples]`` or ``[clips, samples, 1]``.
        sample_rate: the clips' rate in Hz.
        folder: where ``epoch_{n:03d}_{i}.wav`` files go (None: write nothing).
        every: generate every this many epochs (and always after the last, and after an
            epoch at which a callback stopped training, e.g. :class:`TimeBudget`).
        every_minutes: also generate once this many minutes of wall-clock time have
            passed since the last samples (0: count epochs only), for trainings that
            stop on a budget long before their ``epochs``.
        show: display a waveform plot and players when running under IPython.
        clock: the time source (``time.perf_counter``; tests pass a fake one).

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
        every_minutes: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        if every < 1 or every_minutes < 0:
            raise ValueError(
                f"every must be at least 1 and every_minutes >= 0, got {every} and {every_minutes}."
            )
        self.generate = generate
        self.sample_rate = sample_rate
        self.folder = None if folder is None else Path(folder)
        self.every = every
        self.every_minutes = every_minutes
        self.show = show
        self.clock = clock
        self.history: list[tuple[int, np.ndarray]] = []
        self._sampled_at = clock()

    def on_train_begin(self, logs=None):
        self._sampled_at = self.clock()

    def _due(self, epoch: int, logs) -> bool:
        last_epoch = self.params.get("epochs", epoch + 1) - 1 if self.params else epoch
        if (epoch + 1) % self.every == 0 or epoch == last_epoch:
            return True
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            return False  # a diverged model makes no samples worth hearing
        stopped = self.model is not None and self.model.stop_training
        minutes = (self.clock() - self._sampled_at) / 60
        return stopped or (self.every_minutes > 0 and minutes >= self.every_minutes)

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch, logs):
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
        self._sampled_at = self.clock()  # the minutes count training, not generating


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
