"""The diffusion model: DDPM training with ``fit()``, EMA weights, DDIM/DDPM generation.

Training (Ho et al. 2020, Algorithm 1) draws, for each clip x_0 in the batch, a step
t ~ Uniform{0 .. T-1} and noise eps ~ N(0, I), makes x_t with eq. 4 and minimises

    L_simple = || eps - eps_theta(x_t, t, c) ||^2                         (Ho eq. 14).

For classifier-free guidance (Ho & Salimans 2022) the label c is replaced by "no label"
with probability ``p_uncond``, so one network learns both eps(x_t, t, c) and eps(x_t, t);
at sampling time they are mixed as

    eps = eps(x_t, t) + w * (eps(x_t, t, c) - eps(x_t, t)),

with guidance weight w (1: plain conditional, 0: unconditional, > 1: more typical of c).

A second copy of the denoiser holds an exponential moving average of the weights,
updated after every step; generation uses that copy.

Used in: 03_diffusion.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import training
from course_lib.diffusion import sampling
from course_lib.diffusion.denoiser import DiffWaveDenoiser
from course_lib.diffusion.schedules import NoiseSchedule
from course_lib.diffusion.settings import DENOISERS, PREDICTIONS, DiffusionConfig
from course_lib.diffusion.unet import UNetDenoiser


@keras.saving.register_keras_serializable(package="course_lib")
class DiffusionModel(keras.Model):
    """A DiffWave or U-Net denoiser trained as a DDPM, with EMA weights and guided sampling.

    ``fit`` takes batches ``(audio [b, n, 1], labels [b])`` as made by
    ``course_lib.data.load_split`` (or audio alone for an unconditional model; the
    labels are then ignored). Build and compile it inside
    ``course_lib.config.strategy().scope()`` to train on several devices;
    ``compile(jit_compile=True)`` works. All weight shapes follow from the arguments,
    so the model is built when constructed.

    Calling the model, ``model((noisy_audio, steps))`` or ``model((noisy_audio, steps,
    labels))``, returns the trained (not EMA) network's noise prediction ``[b, n, 1]``.

    Args:
        clip_samples: samples per generated clip.
        residual_channels, residual_layers, dilation_cycle: the DiffWave network.
        num_classes: classes to condition on (0: unconditional).
        label_dim: width of the class embedding.
        label_frames: the word-over-time embedding, F frames per clip (0: one vector
            per clip; ``denoiser.DiffWaveDenoiser``, ``unet.UNetDenoiser``).
        schedule: ``"linear"`` or ``"cosine"``.
        diffusion_steps: T.
        beta_start, beta_end: the linear schedule's range.
        ema_decay: decay of the weight average (warmed up, see :meth:`ema_decay_at`).
        p_uncond: probability of dropping a label during training.
        seed: seed of the training draws (t, noise, label dropout).
        denoiser: ``"diffwave"`` (:class:`DiffWaveDenoiser`) or ``"unet"``
            (:class:`~course_lib.diffusion.unet.UNetDenoiser`).
        unet_channels, unet_strides, unet_patch: the U-Net's widths, strides and samples
            per top-level position.
        prediction: what the network predicts, ``"eps"`` (Ho et al. 2020) or ``"v"``
            (Salimans & Ho 2022, converted to eps for sampling).
        audio_scale: the model diffuses ``audio_scale * audio`` and divides what it
            generates by it: speech at an RMS of 0.05 is scaled toward the unit variance
            the noise schedule assumes (Karras et al. 2022's sigma_data).
        min_snr_gamma: > 0 weighs each example's loss by the Min-SNR-gamma weight of its
            step (``NoiseSchedule.min_snr_weights``); 0 keeps Ho et al.'s plain mean.

    Mixed precision: built under the ``mixed_float16`` dtype policy
    (``course_lib.accelerator``), the two denoisers compute in float16 but predict eps in
    float32; the schedule, the draws of t and eps, x_t, the loss and the EMA update stay
    float32 (all weights are float32), ``compile`` wraps the optimizer in a
    ``LossScaleOptimizer`` and :meth:`train_step` scales the loss before the gradients
    (the optimizer unscales them, and skips a step whose gradients overflow).
    """

    def __init__(
        self,
        clip_samples: int,
        residual_channels: int = 64,
        residual_layers: int = 30,
        dilation_cycle: int = 10,
        num_classes: int = 0,
        label_dim: int = 128,
        label_frames: int = 0,
        schedule: str = "linear",
        diffusion_steps: int = 200,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        ema_decay: float = 0.999,
        p_uncond: float = 0.1,
        seed: int = 0,
        denoiser: str = "diffwave",
        unet_channels: Sequence[int] = (32, 64, 64, 128, 128, 256),
        unet_strides: Sequence[int] = (4, 4, 4, 4, 4),
        unet_patch: int = 1,
        prediction: str = "eps",
        audio_scale: float = 1.0,
        min_snr_gamma: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if denoiser not in DENOISERS:
            raise ValueError(f"denoiser must be one of {DENOISERS}, not {denoiser!r}.")
        if not audio_scale > 0:
            raise ValueError(f"audio_scale must be > 0, got {audio_scale}.")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, not {prediction!r}.")
        if clip_samples < 1:
            raise ValueError(f"clip_samples must be >= 1, got {clip_samples}.")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}.")
        if not 0 <= p_uncond < 1:
            raise ValueError(f"p_uncond must be in [0, 1), got {p_uncond}.")
        self.clip_samples = int(clip_samples)
        self.residual_channels = residual_channels
        self.residual_layers = residual_layers
        self.dilation_cycle = dilation_cycle
        self.num_classes = num_classes
        self.label_dim = label_dim
        self.label_frames = label_frames
        self.schedule_name = schedule
        self.diffusion_steps = diffusion_steps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.ema_decay = ema_decay
        self.p_uncond = p_uncond
        self.seed = seed
        self.denoiser_name = denoiser
        self.unet_channels = tuple(int(width) for width in unet_channels)
        self.unet_strides = tuple(int(stride) for stride in unet_strides)
        self.unet_patch = int(unet_patch)
        self.prediction = prediction
        self.audio_scale = float(audio_scale)
        if min_snr_gamma < 0:
            raise ValueError(f"min_snr_gamma must be >= 0 (0 = off), got {min_snr_gamma}.")
        self.min_snr_gamma = float(min_snr_gamma)
        self.schedule = NoiseSchedule.named(schedule, diffusion_steps, beta_start, beta_end)
        self._loss_weights = ops.convert_to_tensor(
            (
                self.schedule.min_snr_weights(self.min_snr_gamma, prediction)
                if self.min_snr_gamma
                else np.ones(diffusion_steps)
            ).astype(np.float32)
        )  # [T]

        if denoiser == "diffwave":
            network_class, network = (
                DiffWaveDenoiser,
                {
                    "residual_channels": residual_channels,
                    "residual_layers": residual_layers,
                    "dilation_cycle": dilation_cycle,
                    "num_classes": num_classes,
                    "label_dim": label_dim,
                    "label_frames": label_frames,
                },
            )
        else:
            network_class, network = (
                UNetDenoiser,
                {
                    "channels": self.unet_channels,
                    "strides": self.unet_strides,
                    "patch": self.unet_patch,
                    "num_classes": num_classes,
                    "label_frames": label_frames,
                },
            )
        # The denoisers follow this model's dtype policy (saved with it), not the global one.
        self.denoiser = network_class(**network, name="denoiser", dtype=self.dtype_policy)
        self.ema_denoiser = network_class(**network, name="ema_denoiser", dtype=self.dtype_policy)
        self.ema_denoiser.trainable = False
        self.training_draws = keras.random.SeedGenerator(seed, name="training_draws")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.build()
        self._noise_functions: dict[bool, tf.types.experimental.PolymorphicFunction] = {}

    @property
    def conditioned(self) -> bool:
        """True when the model takes class labels (see the denoiser's)."""
        return self.denoiser.conditioned

    @property
    def no_label(self) -> int:
        """The label index that means "no label" (see the denoiser's)."""
        return self.denoiser.no_label

    def build(self, input_shape=None):
        if self.built:
            return
        self.denoiser.build()
        self.ema_denoiser.build()
        for average, weight in zip(self.ema_denoiser.weights, self.denoiser.weights, strict=True):
            average.assign(weight)  # the average starts at the initial weights
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    # ------------------------------------------------------------------ forward pass

    def call(self, inputs, training=False):
        """Noise predicted by the trained network: ``(x_t, t[, labels]) -> [b, n, 1]``."""
        noisy_audio, diffusion_steps, *rest = inputs
        labels = rest[0] if rest else None
        return self.denoiser(noisy_audio, diffusion_steps, labels, training=training)

    # ------------------------------------------------------------------ training

    def _split_batch(self, data):
        """``(audio, labels)`` or ``audio`` -> ``(audio [b, n, 1] float32, labels or None)``."""
        if isinstance(data, (tuple, list)):
            audio, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            audio, labels = data, None
        audio = ops.cast(audio, "float32") * self.audio_scale  # x_0 as the model sees it
        if len(audio.shape) == 2:
            audio = audio[:, :, None]  # [b, n] -> [b, n, 1]
        if not self.conditioned:
            return audio, None
        if labels is None:
            raise ValueError(
                f"this model is conditioned on {self.num_classes} classes: train on "
                "(audio, labels) batches."
            )
        return audio, ops.reshape(ops.cast(labels, "int32"), (-1,))

    def _training_draws(self, audio, labels):
        """t ``[b]``, eps ``[b, n, 1]`` and the labels after dropout, for one replica.

        One seed is drawn per step and offset by the replica's index, so that on several
        devices each replica draws different steps and noise.
        """
        seed = self.training_draws.next()  # [2]
        replica = tf.distribute.get_replica_context()
        replica_id = 0 if replica is None else replica.replica_id_in_sync_group
        seed = seed + ops.cast(ops.stack([replica_id * 7919, 0]), seed.dtype)
        seeds = tf.random.experimental.stateless_split(seed, 3)  # [3, 2]
        batch = ops.shape(audio)[0]
        diffusion_steps = tf.random.stateless_uniform(
            [batch], seeds[0], minval=0, maxval=self.diffusion_steps, dtype=tf.int32
        )
        noise = tf.random.stateless_normal(ops.shape(audio), seeds[1])
        if labels is not None and self.p_uncond > 0:
            dropped = tf.random.stateless_uniform([batch], seeds[2]) < self.p_uncond
            labels = ops.where(dropped, self.no_label, labels)
        return diffusion_steps, noise, labels

    def _noise_prediction_loss(self, data, training: bool):
        audio, labels = self._split_batch(data)
        diffusion_steps, noise, labels = self._training_draws(audio, labels)
        noisy_audio = sampling.add_noise(audio, noise, diffusion_steps, self.schedule)
        predicted = self.denoiser(noisy_audio, diffusion_steps, labels, training=training)
        target = (
            noise
            if self.prediction == "eps"
            else sampling.velocity(audio, noise, diffusion_steps, self.schedule)
        )
        squared = ops.mean(ops.square(target - predicted), axis=(1, 2))  # [b], Ho eq. 14
        if self.min_snr_gamma:  # Hang et al. 2023: w_t per example
            squared = squared * ops.take(self._loss_weights, diffusion_steps)
        return ops.mean(squared), ops.shape(audio)[0]

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, batch = self._noise_prediction_loss(data, training=True)
            # Gradients are summed over replicas: scale so that they average instead.
            # scale_loss multiplies by the loss scale of a LossScaleOptimizer (mixed
            # precision), whose apply() divides the gradients by it again; else identity.
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        variables = self.denoiser.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        self.update_ema()
        self.loss_tracker.update_state(loss, sample_weight=batch)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        loss, batch = self._noise_prediction_loss(data, training=False)
        self.loss_tracker.update_state(loss, sample_weight=batch)
        return {"loss": self.loss_tracker.result()}

    def ema_decay_at(self, updates):
        """The decay used at the ``updates``-th update: ``min(ema_decay, (1 + n) / (10 + n))``.

        The warm-up (as in ``tf.train.ExponentialMovingAverage``) lets the average follow
        the weights closely early in training, when they change fast.
        """
        updates = ops.cast(updates, "float32")
        return ops.minimum(self.ema_decay, (1.0 + updates) / (10.0 + updates))

    def update_ema(self):
        """ema <- d * ema + (1 - d) * weights, for every weight of the denoiser."""
        decay = self.ema_decay_at(self.optimizer.iterations)
        for average, weight in zip(self.ema_denoiser.weights, self.denoiser.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * weight)

    # ------------------------------------------------------------------ generation

    def _as_noise(self, predicted, noisy_audio, diffusion_steps):
        """The network's output as eps (a velocity is converted; guidance mixes either
        linearly, so guiding v and then converting equals guiding eps)."""
        if self.prediction == "eps":
            return predicted
        return sampling.noise_from_velocity(noisy_audio, predicted, diffusion_steps, self.schedule)

    def _guided_noise(self, noisy_audio, diffusion_steps, labels, guidance):
        """eps of the EMA network, with classifier-free guidance when labels are given."""
        if labels is None:
            unconditional = (
                ops.full_like(diffusion_steps, self.no_label) if self.conditioned else None
            )
            predicted = self.ema_denoiser(noisy_audio, diffusion_steps, unconditional)
            return self._as_noise(predicted, noisy_audio, diffusion_steps)
        # Both predictions in one batch: [x; x] with [c; no label].
        batch = ops.shape(noisy_audio)[0]
        both = self.ema_denoiser(
            ops.concatenate([noisy_audio, noisy_audio], axis=0),
            ops.concatenate([diffusion_steps, diffusion_steps], axis=0),
            ops.concatenate([labels, ops.full_like(labels, self.no_label)], axis=0),
        )
        conditional, unconditional = both[:batch], both[batch:]
        guided = unconditional + guidance * (conditional - unconditional)
        return self._as_noise(guided, noisy_audio, diffusion_steps)

    def _conditional_noise(self, noisy_audio, diffusion_steps, labels):
        predicted = self.ema_denoiser(noisy_audio, diffusion_steps, labels)
        return self._as_noise(predicted, noisy_audio, diffusion_steps)

    def _noise_function(self, guided: bool):
        """A compiled ``(x_t, t, labels, guidance) -> eps``, made once per model."""
        if guided not in self._noise_functions:
            if guided:
                function = self._guided_noise
            else:

                def function(noisy_audio, diffusion_steps, labels, guidance):
                    del guidance
                    if labels is None:
                        return self._guided_noise(noisy_audio, diffusion_steps, None, None)
                    return self._conditional_noise(noisy_audio, diffusion_steps, labels)

            self._noise_functions[guided] = tf.function(function, reduce_retracing=True)
        return self._noise_functions[guided]

    def check_labels(self, label, n: int) -> np.ndarray | None:
        """``label`` (None, an int or ``n`` ints) as an int32 array ``[n]``, checked."""
        if label is None:
            return None
        if not self.conditioned:
            raise ValueError("this model is unconditional (num_classes=0): generate without label.")
        labels = np.asarray(label)
        if labels.ndim == 0:
            labels = np.full(n, labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"label must be an int or {n} ints (one per clip), got {np.asarray(label)!r}."
            )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"labels must be class indices in 0..{self.num_classes - 1}, got "
                f"{sorted(set(labels.tolist()))}."
            )
        return labels.astype(np.int32)

    def generate(
        self,
        n: int,
        steps: int = 50,
        sampler: str = "ddim",
        label: int | Sequence[int] | np.ndarray | None = None,
        guidance: float = 1.0,
        seed: int = 0,
        batch_size: int = 32,
        progress: bool = True,
        eta: float = 0.0,
    ) -> np.ndarray:
        """Generate ``n`` clips with the EMA network (see ``sampling.sample``).

        Args:
            n: clips to generate.
            steps: network evaluations per clip (``1 .. diffusion_steps``).
            sampler: ``"ddim"`` (Song et al. 2021) or ``"ddpm"`` (Ho et al. 2020; with
                fewer steps than ``diffusion_steps`` it runs on the respaced schedule).
            label: class of every clip (an int) or of each clip (``n`` ints); None for
                unconditional samples (a conditioned model then uses "no label").
            guidance: classifier-free guidance weight w (used when ``label`` is given;
                1 = plain conditional).
            seed: the same seed gives the same clips (for the same ``batch_size``).
            batch_size: clips sampled together.
            progress: show a progress bar per batch.
            eta: DDIM's noise scale (0 = deterministic).

        Returns:
            float32 ``[n, clip_samples, 1]`` in [-1, 1].
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        sampling.check_sampler(sampler, steps, self.schedule, eta)
        labels = self.check_labels(label, n)
        guided = labels is not None and guidance != 1.0
        noise_function = self._noise_function(guided)
        guidance_tensor = tf.constant(guidance, tf.float32)
        clips = []
        for chunk, start in enumerate(range(0, n, batch_size)):
            count = min(batch_size, n - start)
            chunk_labels = None if labels is None else tf.constant(labels[start : start + count])

            def denoise(noisy_audio, diffusion_steps, chunk_labels=chunk_labels):
                return noise_function(noisy_audio, diffusion_steps, chunk_labels, guidance_tensor)

            clips.append(
                sampling.sample(
                    denoise,
                    (count, self.clip_samples, 1),
                    self.schedule,
                    sampler=sampler,
                    steps=steps,
                    eta=eta,
                    seed=(seed, chunk),
                    progress=progress,
                )
            )
        made = np.concatenate(clips, axis=0) / self.audio_scale  # back to the data's level
        return np.clip(made, -1.0, 1.0)

    # ------------------------------------------------------------------ saving

    def get_config(self):
        return {
            **super().get_config(),
            "clip_samples": self.clip_samples,
            "residual_channels": self.residual_channels,
            "residual_layers": self.residual_layers,
            "dilation_cycle": self.dilation_cycle,
            "num_classes": self.num_classes,
            "label_dim": self.label_dim,
            "label_frames": self.label_frames,
            "schedule": self.schedule_name,
            "diffusion_steps": self.diffusion_steps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "ema_decay": self.ema_decay,
            "p_uncond": self.p_uncond,
            "seed": self.seed,
            "denoiser": self.denoiser_name,
            "unet_channels": list(self.unet_channels),
            "unet_strides": list(self.unet_strides),
            "unet_patch": self.unet_patch,
            "prediction": self.prediction,
            "audio_scale": self.audio_scale,
            "min_snr_gamma": self.min_snr_gamma,
        }


def build_diffusion_model(
    config: DiffusionConfig,
    num_classes: int = 0,
    clip_samples: int | None = None,
    jit_compile: bool | str = "auto",
    seed: int = 0,
) -> DiffusionModel:
    """A :class:`DiffusionModel` with ``config``'s settings, compiled with Adam.

    Call it inside ``course_lib.config.strategy().scope()`` to train on several devices.

    Args:
        config: the network, schedule and training settings.
        num_classes: classes to condition on (0: unconditional).
        clip_samples: samples per clip (default: ``config.clip_samples``; pass the
            dataset manifest's ``clip_samples``).
        jit_compile: passed to ``compile`` (XLA).
        seed: seed of the training draws.
    """
    model = DiffusionModel(
        clip_samples=config.clip_samples if clip_samples is None else clip_samples,
        residual_channels=config.residual_channels,
        residual_layers=config.residual_layers,
        dilation_cycle=config.dilation_cycle,
        num_classes=num_classes,
        label_dim=config.label_dim,
        label_frames=config.label_frames,
        schedule=config.schedule,
        diffusion_steps=config.diffusion_steps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        ema_decay=config.ema_decay,
        p_uncond=config.p_uncond,
        seed=seed,
        denoiser=config.denoiser,
        unet_channels=config.unet_channels,
        unet_strides=config.unet_strides,
        unet_patch=config.unet_patch,
        prediction=config.prediction,
        audio_scale=config.audio_scale,
        min_snr_gamma=config.min_snr_gamma,
        name="diffusion",
    )
    clipping = {"global_clipnorm": config.clip_norm} if config.clip_norm > 0 else {}
    optimizer = keras.optimizers.Adam(config.learning_rate, **clipping)
    training.compile_model(model, optimizer, jit_compile=jit_compile)
    return model
