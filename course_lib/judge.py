"""The judge: a Speech Commands classifier on raw waveforms, used to score generators.

Generated SC09 digits are scored as in WaveGAN (Donahue et al., 2019), DiffWave (Kong et
al., 2021) and SaShiMi (Goel et al., 2022): a classifier trained on real clips gives

- class probabilities ``p(y | x)`` for the Inception Score, and
- a penultimate embedding ``f(x)`` for the Fréchet distance (``course_lib.metrics``).

The model takes waveforms ``[batch, samples, 1]`` and computes its own log-mel
spectrogram with ``tf.signal`` (:class:`LogMelSpectrogram`), so a judge saved as one
``.keras`` file scores audio without any separate feature code. After the front end come
``len(widths)`` blocks of two 3x3 convolutions, batch normalization, ReLU and 2x2 max
pooling, global average pooling, the ``embedding`` layer (dense + ReLU) and the class
logits.

:func:`load_or_train_judge` returns the judge for a converted dataset, training and
caching it (on Google Drive when mounted) the first time and restoring it afterwards
(``course_lib.training.train_or_restore``), so every notebook can run on its own.

Used in: 02_judge_and_metrics.ipynb and every notebook that scores generated audio.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from course_lib import audio as audio_lib
from course_lib import config, data, training

EMBEDDING_LAYER = "embedding"
JUDGE_FILE = "judge.keras"
INFO_FILE = "judge.json"
# Batch-norm running statistics follow the last ~10 batches: small datasets have few steps.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="course_lib")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveform ``[batch, samples, 1]`` to log-mel spectrogram ``[batch, frames, mels, 1]``.

    With a periodic Hann window ``w`` of ``frame_length`` samples, frames ``hop`` apart
    and the HTK mel filterbank ``M`` of ``tf.signal.linear_to_mel_weight_matrix``:

        S[t, k] = |sum_n w[n] x[t * hop + n] exp(-2 pi i k n / n_fft)|        (STFT)
        mel[t, m] = log(sum_k S[t, k] M[k, m] + floor)

    Frames that do not fit are dropped (``frames = 1 + (samples - frame_length) // hop``).

    Args:
        sample_rate: samples per second of the input.
        frame_length: window length in samples (25 ms at 16 kHz: 400).
        frame_step: hop in samples (10 ms at 16 kHz: 160).
        n_mels: mel bands.
        fmin: lowest band edge in Hz.
        floor: added before the log, so silence gives ``log(floor)``, not ``-inf``.

    The layer computes in float32 under any dtype policy (``dtype`` defaults to
    ``"float32"``): under ``mixed_float16`` the waveform would otherwise be rounded to
    float16 before the STFT, and small mel energies would lose precision in the log.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_length: int = 400,
        frame_step: int = 160,
        n_mels: int = 40,
        fmin: float = 20.0,
        floor: float = 1e-6,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # the front end stays float32 (docstring)
        super().__init__(**kwargs)
        if frame_length < 2 or frame_step < 1 or n_mels < 1:
            raise ValueError(
                f"frame_length >= 2, frame_step >= 1 and n_mels >= 1 are required, got "
                f"{frame_length}, {frame_step} and {n_mels}."
            )
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.floor = float(floor)
        self.fft_length = 1 << (self.frame_length - 1).bit_length()
        self.mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=self.n_mels,
            num_spectrogram_bins=self.fft_length // 2 + 1,
            sample_rate=self.sample_rate,
            lower_edge_hertz=self.fmin,
            upper_edge_hertz=self.sample_rate / 2,
        )

    def call(self, waveforms):
        signals = tf.squeeze(tf.cast(waveforms, tf.float32), axis=-1)  # [b, n, 1] -> [b, n]
        stft = tf.signal.stft(
            signals,
            self.frame_length,
            self.frame_step,
            self.fft_length,
            window_fn=tf.signal.hann_window,
        )
        mel = tf.tensordot(tf.abs(stft), self.mel_matrix, axes=1)  # [b, frames, mels]
        return tf.math.log(mel + self.floor)[..., None]

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else 1 + (samples - self.frame_length) // self.frame_step
        return (input_shape[0], frames, self.n_mels, 1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "floor": self.floor,
        }


@dataclasses.dataclass(frozen=True)
class JudgeConfig(config.Presets):
    """Settings of the judge (``JudgeConfig.for_mode()``).

    Full: the ten SC09 digits of Speech Commands at 16 kHz (31,158 training clips), four
    convolution blocks; on a Colab T4 an epoch takes roughly 30 s, so 30 epochs about
    15 minutes (an estimate). Quick: the same digits from the spoken-word fixture, three
    narrow blocks, a minute on two CPU cores.
    """

    # data
    words: str = "sc09"
    sample_rate: int = 16000
    # front end (25 ms windows, 10 ms hop at 16 kHz)
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    n_mels: int = 40
    # network
    widths: tuple[int, ...] = (32, 64, 128, 256)
    embedding_dim: int = 128
    dropout: float = 0.3
    # training
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    time_shift_seconds: float = 0.1
    noise_probability: float = 0.5
    max_noise_gain: float = 0.1
    # band-limiting (course_lib.data.random_band_limit): this fraction of the training
    # clips sounds as if made at one of these rates, so that the judge, which hears 8 and
    # 4 kHz generators through Judge.conform, hears their digits as well as 16 kHz ones
    band_limit_probability: float = 0.4
    band_limit_rates: tuple[int, ...] = (8000, 4000)
    seed: int = 0
    # scoring: Inception Score splits (10 in the papers; the quick test set has 50 clips);
    # not part of tag(), so changing it keeps the trained judge
    score_splits: int = config.not_training(10)
    # the test clips that notebook 02 damages for its sweeps (the first ones in file order:
    # 64 MB at 16 kHz, the whole quick test set); not part of tag()
    sweep_clips: int = config.not_training(1000)

    # The rehearsal (COURSE_MODE=rehearsal): the full network for one epoch.
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(epochs=1, score_splits=1)

    @classmethod
    def quick(cls) -> JudgeConfig:
        return cls(widths=(16, 32, 64), embedding_dim=64, epochs=25, batch_size=32, score_splits=1)


def build_judge_model(clip_samples: int, num_classes: int, cfg: JudgeConfig) -> keras.Model:
    """The classifier: waveform ``[batch, clip_samples, 1]`` to logits ``[batch, classes]``.

    The penultimate layer is named ``"embedding"`` (``[batch, cfg.embedding_dim]``).

    Under the ``mixed_float16`` dtype policy (``course_lib.accelerator``) the convolution
    blocks compute in float16, while the log-mel front end, the input normalization and
    the head (embedding, dropout, logits) stay float32: the logits and the embedding that
    the Inception Score and the Fréchet distance use come out in float32.
    """
    if clip_samples < 1 or num_classes < 2:
        raise ValueError(
            f"need clip_samples >= 1 and at least 2 classes, got {clip_samples} and {num_classes}."
        )
    waveforms = keras.Input((clip_samples, 1), name="waveform")
    x = LogMelSpectrogram(
        cfg.sample_rate,
        frame_length=round(cfg.frame_seconds * cfg.sample_rate),
        frame_step=round(cfg.hop_seconds * cfg.sample_rate),
        n_mels=cfg.n_mels,
        name="log_mel",
    )(waveforms)
    # float32: normalises the float32 log-mel before anything is rounded to float16.
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="input_norm", dtype="float32")(x)
    for block, width in enumerate(cfg.widths):
        for conv in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = keras.layers.ReLU(name=f"block{block}_relu{conv}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # The head is small: float32 under any policy, so that embedding and logits are.
    x = keras.layers.Dense(
        cfg.embedding_dim, activation="relu", name=EMBEDDING_LAYER, dtype="float32"
    )(x)
    x = keras.layers.Dropout(cfg.dropout, dtype="float32")(x)
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(waveforms, logits, name="judge")


@dataclasses.dataclass
class Evaluation:
    """A judge's predictions on a labelled split.

    Attributes:
        accuracy: fraction of clips classified correctly.
        confusion: ``[classes, classes]`` counts, row = true class, column = prediction.
        true: ``[n]`` labels; predicted: ``[n]`` predictions; labels: class names.
    """

    accuracy: float
    confusion: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    labels: list[str]

    def misclassified(self) -> np.ndarray:
        """Indices of the clips the judge got wrong."""
        return np.flatnonzero(self.true != self.predicted)


@dataclasses.dataclass
class SplitFeatures:
    """What the judge makes of every clip of a split (:meth:`Judge.split_features`).

    Attributes:
        embeddings: ``[n, embedding_dim]`` penultimate features, for the Fréchet distance.
        probabilities: ``[n, classes]`` softmax of the logits, for the Inception Score.
        labels: ``[n]`` the clips' true labels.
    """

    embeddings: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray


class Judge:
    """A trained classifier with the views the metrics need.

    Args:
        model: waveform-to-logits model from :func:`build_judge_model`.
        labels: class names, in label order.
        sample_rate: the rate of the audio it was trained on.
        history: per-epoch training metrics (``fit().history``), for plots.
    """

    def __init__(
        self,
        model: keras.Model,
        labels: Sequence[str],
        sample_rate: int,
        history: dict[str, list[float]] | None = None,
    ):
        self.model = model
        self.labels = list(labels)
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(model.input_shape[1])
        self.history = history or {}
        # One traced function for any number of clips (Keras' predict retraces per size).
        both = keras.Model(model.input, [model.get_layer(EMBEDDING_LAYER).output, model.output])
        self._forward = tf.function(
            lambda clips: both(clips, training=False),
            input_signature=[tf.TensorSpec([None, self.clip_samples, 1], tf.float32)],
        )

    def __repr__(self) -> str:
        return (
            f"Judge({len(self.labels)} classes, {self.clip_samples} samples at "
            f"{self.sample_rate} Hz, {self.model.count_params():,} parameters)"
        )

    def conform(self, clips: np.ndarray, sample_rate: int) -> np.ndarray:
        """Clips ``[n, samples]`` at ``sample_rate`` made judgeable: resampled to the
        judge's rate and zero-padded or cut to its clip length, ``[n, clip_samples]``.

        Generators that work at 4 or 8 kHz, or make shorter clips, are scored this way
        (band-limited audio scores worse: that is part of what the judge measures).
        """
        clips = audio_lib.clip_batch(clips)
        resampled = [
            audio_lib.fit_length(
                audio_lib.resample(clip, sample_rate, self.sample_rate), self.clip_samples
            )
            for clip in clips
        ]
        return (
            np.stack(resampled).astype(np.float32)
            if resampled
            else np.zeros((0, self.clip_samples), np.float32)
        )

    def embed(self, audio: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Penultimate features ``f(x)``: ``[n, samples]`` or ``[n, samples, 1]`` to ``[n, d]``."""
        return self._run(audio, batch_size)[0]

    def predict_proba(self, audio: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``p(y | x)`` ``[n, classes]`` (softmax of the logits)."""
        logits = self._run(audio, batch_size)[1]
        return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))

    def _run(self, audio: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and logits of checked clips, in batches."""
        audio = self._check(audio)
        outputs = [
            self._forward(audio[i : i + batch_size]) for i in range(0, len(audio), batch_size)
        ]
        if not outputs:
            return np.zeros((0, self.model.get_layer(EMBEDDING_LAYER).units), np.float32), np.zeros(
                (0, len(self.labels)), np.float32
            )
        return tuple(np.concatenate([np.asarray(o[k]) for o in outputs]) for k in (0, 1))

    def features(self, audio: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``[n, d]`` and class probabilities ``[n, classes]`` in one pass."""
        embeddings, logits = self._run(audio, batch_size)
        return embeddings, keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))

    def predict_labels(self, audio: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The most likely class per clip, ``[n]`` ints."""
        return np.argmax(self.predict_proba(audio, batch_size), axis=-1)

    def split_features(
        self, folder: str | Path, split: str, batch_size: int = 256
    ) -> SplitFeatures:
        """Embeddings, probabilities and labels of every clip of a split, in file order.

        The clips stream batch by batch from the TFRecords (``data.load_split``), so the
        memory is one batch of audio and ``embedding_dim + classes`` floats per clip:
        16 MB for SC09's 31,158 training clips, whose audio would take 2 GB. The dataset
        must be at the judge's rate and clip length (``conform`` is for other audio).
        """
        manifest = data.read_manifest(folder)
        if (manifest.sample_rate, manifest.clip_samples) != (self.sample_rate, self.clip_samples):
            raise ValueError(
                f"{folder} holds clips of {manifest.clip_samples} samples at "
                f"{manifest.sample_rate} Hz; the judge takes {self.clip_samples} samples at "
                f"{self.sample_rate} Hz."
            )
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for audio, labels in data.load_split(folder, split, batch_size, shuffle=False):
            embeddings, logits = self._forward(audio)
            probabilities = keras.ops.softmax(logits, axis=-1)
            parts.append((np.asarray(embeddings), np.asarray(probabilities), labels.numpy()))
        if not parts:
            width = self.model.get_layer(EMBEDDING_LAYER).units
            parts = [
                (
                    np.zeros((0, width), np.float32),
                    np.zeros((0, len(self.labels)), np.float32),
                    np.zeros(0, np.int32),
                )
            ]
        return SplitFeatures(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    def evaluate(
        self, folder: str | Path, split: str = "test", batch_size: int = 256
    ) -> Evaluation:
        """Accuracy and confusion matrix on a split of a converted dataset, streamed
        (:meth:`split_features`); ``true`` and ``predicted`` are in file order, so
        ``data.read_table(folder, split, rows=evaluation.misclassified())`` reads the
        clips it got wrong."""
        features = self.split_features(folder, split, batch_size)
        true = features.labels
        if len(true) == 0:
            raise ValueError(f"{folder} has no {split!r} clips to evaluate on.")
        predicted = np.argmax(features.probabilities, axis=-1)
        classes = len(self.labels)
        confusion = np.zeros((classes, classes), np.int64)
        np.add.at(confusion, (true, predicted), 1)
        accuracy = float(np.mean(true == predicted))
        return Evaluation(accuracy, confusion, true, predicted, self.labels)

    def save(self, folder: str | Path) -> Path:
        """Write ``judge.keras`` and ``judge.json`` (labels, rate, history) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        info = {"labels": self.labels, "sample_rate": self.sample_rate, "history": self.history}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=1))
        partial = folder / "judge.partial.keras"  # renamed when complete
        self.model.save(partial)
        os.replace(partial, folder / JUDGE_FILE)
        return folder / JUDGE_FILE

    @classmethod
    def load(cls, folder: str | Path) -> Judge:
        """The judge saved by :meth:`save`."""
        folder = Path(folder)
        if not (folder / JUDGE_FILE).is_file():
            raise FileNotFoundError(f"{folder} holds no {JUDGE_FILE}; train a judge first.")
        info = json.loads((folder / INFO_FILE).read_text())
        model = keras.saving.load_model(folder / JUDGE_FILE, compile=False)
        return cls(model, info["labels"], info["sample_rate"], info.get("history"))

    def _check(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, np.float32)
        if audio.ndim == 2:
            audio = audio[..., None]
        if audio.ndim != 3 or audio.shape[1:] != (self.clip_samples, 1):
            raise ValueError(
                f"the judge takes clips of {self.clip_samples} samples at {self.sample_rate} Hz "
                f"shaped [n, {self.clip_samples}] or [n, {self.clip_samples}, 1], got "
                f"{audio.shape}; resample or pad them first (course_lib.audio)."
            )
        if not np.all(np.isfinite(audio)):
            bad = int(np.sum(~np.all(np.isfinite(audio), axis=(1, 2))))
            raise ValueError(f"{bad} of {len(audio)} clips contain NaN or infinite samples.")
        return audio


def train_judge(
    folder: str | Path,
    cfg: JudgeConfig,
    strategy: tf.distribute.Strategy | None = None,
    backup_dir: str | Path | None = None,
    steps_per_epoch: int | None = None,
    verbose: int | str = "auto",
) -> Judge:
    """Train a judge on a converted dataset's train split, validating on ``validation``.

    Augmentation: random time shifts of up to ``cfg.time_shift_seconds``; when the
    dataset has background noise, noise mixed into ``cfg.noise_probability`` of the
    clips; and ``cfg.band_limit_probability`` of the clips low-passed as if made at one
    of ``cfg.band_limit_rates`` (``course_lib.data.random_band_limit``), so that clips of
    the course's lower rates, resampled by :meth:`Judge.conform`, are heard as well as
    16 kHz ones. The model is built in ``strategy``'s scope (default
    ``config.strategy()``).

    Args:
        folder: the converted dataset (``course_lib.data`` layout).
        cfg: the settings (``JudgeConfig.for_mode()`` in a notebook).
        strategy: a ``tf.distribute`` strategy.
        backup_dir: if given, the training folder of ``course_lib.training.train_or_restore``:
            training state is backed up there every epoch, a rerun after a disconnect
            continues from the last epoch, a rerun of a finished training restores the
            weights without training, and the energy of the sessions that trained is
            summed there.
        steps_per_epoch: limit each epoch (tests).
        verbose: passed to ``fit``.
    """
    manifest = data.read_manifest(folder)
    if manifest.sample_rate != cfg.sample_rate:
        raise ValueError(
            f"{folder} holds {manifest.sample_rate} Hz audio but the judge config expects "
            f"{cfg.sample_rate} Hz."
        )
    config.set_seed(cfg.seed)
    try:
        noise_bank = data.load_noise_bank(folder)
    except FileNotFoundError:
        noise_bank = None
    train = data.load_split(
        folder,
        "train",
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        time_shift_samples=round(cfg.time_shift_seconds * cfg.sample_rate),
        noise_bank=noise_bank,
        noise_probability=cfg.noise_probability,
        max_noise_gain=cfg.max_noise_gain,
        repeat=steps_per_epoch is not None,
    )  # read from the shards every epoch: no cache, see data.load_split
    if cfg.band_limit_probability > 0 and cfg.band_limit_rates:
        train = train.map(_band_limiter(cfg)).prefetch(tf.data.AUTOTUNE)
    validation = data.load_split(folder, "validation", batch_size=256, shuffle=False)
    strategy = strategy or config.strategy()
    with strategy.scope():
        model = build_judge_model(manifest.clip_samples, len(manifest.labels), cfg)
        training.compile_model(
            model,
            keras.optimizers.Adam(cfg.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    options = {
        "validation_data": validation,
        "steps_per_epoch": steps_per_epoch,
        "shuffle": False,  # load_split shuffles
        "verbose": verbose,
    }
    if backup_dir is not None:
        history = training.train_or_restore(
            model, train, backup_dir, cfg.epochs, [training.StopOnNaN()], **options
        ).history
    else:
        fitted = model.fit(train, epochs=cfg.epochs, callbacks=[training.StopOnNaN()], **options)
        history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
    return Judge(model, manifest.labels, manifest.sample_rate, history)


def _band_limiter(cfg: JudgeConfig):
    """The band-limiting step of the judge's training pipeline: ``(audio, labels)`` batches
    with ``cfg.band_limit_probability`` of the clips low-passed (``data.random_band_limit``)."""
    generator = tf.random.Generator.from_seed(cfg.seed + 1)  # load_split's draws use cfg.seed

    def band_limit(audio, labels):
        limited = data.random_band_limit(
            audio, cfg.sample_rate, cfg.band_limit_rates, cfg.band_limit_probability, generator
        )
        return limited, labels

    return band_limit


def load_or_train_judge(
    folder: str | Path,
    cfg: JudgeConfig,
    cache_dir: str | Path,
    verbose: int | str = "auto",
) -> Judge:
    """The judge for a converted dataset: restored from its cache, or trained and cached.

    The cache folder is ``cache_dir`` (a notebook passes ``config.checkpoint_dir("judge")``,
    on Google Drive when mounted) / ``<dataset folder name>-<config tag>``, so each dataset
    and each training config has its own judge (``cfg.tag()`` leaves out scoring
    settings such as ``score_splits``). It trains in the cache's ``backup`` folder with
    ``course_lib.training.train_or_restore``, like every model of the course: an
    interrupted training continues from its last epoch, and a finished one is restored
    without training. The judge is also saved there as one file (``judge.keras``, read
    by :meth:`Judge.load`).
    """
    root = Path(cache_dir)
    folder = Path(folder)
    cached = root / f"{folder.name}-{cfg.tag()}"
    judge = train_judge(folder, cfg, backup_dir=cached / "backup", verbose=verbose)
    if not (cached / JUDGE_FILE).is_file():
        judge.save(cached)
    return judge
