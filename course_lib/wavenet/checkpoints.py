"""Step checkpoints in a log directory, as in ibab/tensorflow-wavenet's ``--checkpoint_every``.

The last checkpoint is one ``model.keras`` file (weights, config and optimizer state, so
its ``optimizer.iterations`` is the step reached), written under a temporary name and
renamed, so an interrupted save never leaves a broken checkpoint.

Used in: 06_wavenet.ipynb and ``python -m course_lib.wavenet``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import keras

from course_lib import training
from course_lib.wavenet.files import CHECKPOINT_NAME, LOSS_LOG_NAME
from course_lib.wavenet.settings import WaveNetConfig


def checkpoint_path(logdir: str | Path) -> Path:
    """Where a log directory keeps its last checkpoint."""
    return Path(logdir) / CHECKPOINT_NAME


def save_checkpoint(model: keras.Model, logdir: str | Path) -> Path:
    """Save ``model`` (with its optimizer state) as the log directory's checkpoint."""
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    temporary = logdir / "model.partial.keras"  # Keras wants the .keras suffix
    model.save(temporary)
    os.replace(temporary, checkpoint_path(logdir))
    return checkpoint_path(logdir)


def load_checkpoint(logdir: str | Path, compile: bool = True) -> keras.Model:
    """The model saved by :func:`save_checkpoint` (with its optimizer when ``compile``)."""
    path = checkpoint_path(logdir)
    if not path.is_file():
        raise FileNotFoundError(f"{logdir} holds no checkpoint ({CHECKPOINT_NAME}): train first.")
    return keras.saving.load_model(path, compile=compile)


def read_losses(logdir: str | Path) -> dict[str, list[float]]:
    """The training curve of a log directory: ``{"step": [...], "loss": [...]}``, one entry
    per checkpoint, in the order written (a resumed run continues the same lists)."""
    path = Path(logdir) / LOSS_LOG_NAME
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return {
        "step": [int(entry["step"]) for entry in entries],
        "loss": [float(entry["loss"]) for entry in entries],
    }


def trained_steps(model: keras.Model) -> int:
    """The optimizer's step counter: how many training steps the weights have seen."""
    return int(model.optimizer.iterations.numpy())


class StepCheckpoints(keras.callbacks.Callback):
    """Saves the checkpoint at every epoch end and stops training at ``last_step``.

    Use it with ``fit(..., steps_per_epoch=checkpoint_every)``: one epoch is one
    checkpoint interval. Prints the step and the epoch's mean loss at each save, and
    appends them to ``losses.jsonl`` in the log directory (see :func:`read_losses`).

    Args:
        logdir: the log directory.
        last_step: stop once the optimizer's step counter reaches it.
    """

    def __init__(self, logdir: str | Path, last_step: int):
        super().__init__()
        self.logdir = Path(logdir)
        self.last_step = last_step

    def on_train_batch_end(self, batch, logs=None):
        if trained_steps(self.model) >= self.last_step:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        save_checkpoint(self.model, self.logdir)
        loss = float((logs or {}).get("loss", math.nan))
        step = trained_steps(self.model)
        with open(self.logdir / LOSS_LOG_NAME, "a") as log:
            log.write(json.dumps({"step": step, "loss": loss}) + "\n")
        print(f"step {trained_steps(self.model)}: loss {loss:.4f}, checkpoint saved", flush=True)


def intervals_to_train(logdir: str | Path, config: WaveNetConfig, start_step: int) -> int:
    """The checkpoint intervals to give ``fit`` (``epochs``, with ``steps_per_epoch =
    config.checkpoint_every``): those left before ``config.steps``, or 0 once the time
    budget ``config.training_minutes`` (> 0) is spent, counted across sessions in
    ``logdir``; with 0, ``fit`` returns at once and the checkpoint is the trained model."""
    if config.training_minutes > 0 and (
        training.training_seconds(logdir) >= 60.0 * config.training_minutes
    ):
        return 0
    return max(0, math.ceil((config.steps - start_step) / config.checkpoint_every))


def training_callbacks(logdir: str | Path, config: WaveNetConfig) -> list[keras.callbacks.Callback]:
    """The callbacks of a resumable WaveNet training in ``logdir``: :class:`StepCheckpoints`
    up to ``config.steps``, ``training.StopOnNaN``, and ``training.TimeBudget`` when
    ``config.training_minutes`` > 0 (it stops at the end of the interval that spends the
    budget)."""
    callbacks = [StepCheckpoints(logdir, config.steps), training.StopOnNaN()]
    if config.training_minutes > 0:
        callbacks.append(training.TimeBudget(logdir, config.training_minutes))
    return callbacks
