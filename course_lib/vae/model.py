"""A convolutional VAE that learns the spectrograms of 1 s clips and hands back audio.

The model takes waveforms ``[batch, samples, 1]`` (so ``fit`` runs directly on
``course_lib.data.load_split``), turns them into spectrogram images ``[batch, frames,
bins, 1]`` in [0, 1] (``course_lib.spectrogram``), and maximises the evidence lower bound
(Kingma & Welling, 2014)

    ELBO = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)),

with a Gaussian decoder of fixed variance, so ``-log p(x|z)`` is, up to a constant, the
summed squared error over the image. The loss it minimises per clip is

    loss = sum_{t,k} (x[t,k] - x_hat[t,k])^2 + w(step) KL,
    w(step) = beta min(1, step / warmup_steps),

where the KL weight ``w`` grows linearly during the warm-up (Bowman et al. 2016): early on
the decoder learns to use ``z`` before the KL term can pull every posterior onto the
prior (posterior collapse, where every output sounds alike).

Encoder: ``len(widths)`` blocks of a stride-2 3x3 convolution, batch normalization,
LeakyReLU and dropout, then a dense layer to ``(mu, log sigma^2)``. Decoder: the mirror
image with transposed convolutions and a sigmoid output. Batch normalization and leaky
units keep gradients alive through the stack.

The latent is one vector per clip, ``z [latent_dim]``, or, with ``latent_over_time``, a
short sequence ``z [steps, latent_dim]``: one vector for each time step of the encoder's
last feature map (``steps = frames / 2 ** len(widths)``), computed by the same dense layer
from that step's features only. A global vector must code where in the clip each sound
sits; a sequence keeps the time axis, as the VQ-VAE's code map does, and the word survives
the round trip far better (``VAEConfig.laptop``: 90% of unseen speakers' clips, against 58
to 66% for one vector, after 20 minutes on one CPU core). The posterior and the prior still
factorise over every number of ``z``, so the KL term is summed over steps and dimensions.

Used in: 04_vae_fid.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import accelerator, spectrogram, training
from course_lib.vae.layers import Sampling, kl_divergence
from course_lib.vae.settings import VAEConfig

# Batch-norm running statistics follow the last ~10 batches: small datasets have few steps.
BN_MOMENTUM = 0.9


def kl_weight(step, beta: float, warmup_steps: int):
    """The KL weight after ``step`` training steps: ``beta * min(1, step / warmup_steps)``.

    ``warmup_steps = 0`` means no warm-up (``beta`` from the start).
    """
    if warmup_steps <= 0:
        return ops.convert_to_tensor(beta, "float32")
    progress = ops.minimum(ops.cast(step, "float32") / float(warmup_steps), 1.0)
    return beta * progress


class AudioVAE(keras.Model):
    """What the spectrogram and the waveform VAE share: sampling, the loss, making audio.

    ``call(audio [batch, samples, 1])`` returns a dict: ``target`` (what the model
    rebuilds: a spectrogram image or the waveform itself), ``reconstruction``, ``mean`` and
    ``log_var`` (``[batch, *latent_shape]``: ``[batch, latent_dim]``, or ``[batch, steps,
    latent_dim]`` with ``latent_over_time``). ``fit`` takes batches ``(audio, labels)`` and
    ignores the labels; it reports ``loss``, ``reconstruction`` (summed squared error per
    clip), ``kl`` (nats per clip) and ``kl_weight``. Subclasses set ``self.encoder`` and
    ``self.decoder`` and define :meth:`to_target` and :meth:`target_to_audio`.

    Args:
        clip_samples: samples per clip.
        sample_rate: samples per second.
        widths: channels of each encoder block (the decoder mirrors them).
        latent_dim: size of ``z``.
        dropout: dropout after each encoder block.
        beta, warmup_steps: the KL weight schedule (:func:`kl_weight`).
        seed: seed of the sampling noise.
        latent_over_time: False: ``z [latent_dim]``; True: ``z [steps, latent_dim]``, one
            vector per time step of the encoder's last feature map (module docstring).

    Mixed precision: built under the ``mixed_float16`` dtype policy
    (``course_lib.accelerator``), the encoder and decoder blocks compute in float16,
    while the input audio and the spectrogram front end (the model does not cast its
    input), the ``mean`` and ``log_var`` heads, the sampling, the decoder's output layer,
    the KL term and the loss stay float32. :func:`build_vae` compiles it with a
    ``LossScaleOptimizer`` (:func:`initial_loss_scale`; ``compile`` would wrap a plain
    optimizer in one too), which Keras' ``train_step`` uses to scale the loss.
    """

    def __init__(
        self,
        clip_samples: int,
        sample_rate: int = 16000,
        widths: Sequence[int] = (32, 64, 128, 256),
        latent_dim: int = 64,
        dropout: float = 0.1,
        beta: float = 1.0,
        warmup_steps: int = 5000,
        seed: int = 0,
        latent_over_time: bool = False,
        **kwargs,
    ):
        # autocast=False: a mixed_float16 model would otherwise round its float32 audio to
        # float16 before the float32 spectrogram; the sublayers cast their own inputs.
        super().__init__(autocast=False, **kwargs)
        if not widths or latent_dim < 1:
            raise ValueError(
                f"need at least one block and latent_dim >= 1, got {widths}, {latent_dim}."
            )
        self.clip_samples = int(clip_samples)
        self.sample_rate = int(sample_rate)
        self.widths = tuple(int(w) for w in widths)
        self.latent_dim = int(latent_dim)
        self.dropout = float(dropout)
        self.beta = float(beta)
        self.warmup_steps = int(warmup_steps)
        self.seed = int(seed)
        self.latent_over_time = bool(latent_over_time)
        self.sampling = Sampling(seed, name="sampling")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.kl_weight_tracker = keras.metrics.Mean(name="kl_weight")

    def build(self, input_shape=None):
        """Nothing to create: the encoder and decoder are functional models, built when
        constructed, and the sampling layer has no weights."""
        self.built = True

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one clip's ``z``: ``(latent_dim,)`` or ``(steps, latent_dim)``."""
        return tuple(int(size) for size in self.encoder.outputs[0].shape[1:])

    def _gaussian_encoder(self, inputs, features) -> keras.Model:
        """The encoder model: ``features [batch, steps, ...]`` into ``(mu, log sigma^2)``,
        each ``[batch, *latent_shape]`` (``log_var`` starts at 0, i.e. sigma = 1): all
        features flattened into one vector, or, with ``latent_over_time``, each step's
        features into that step's vector."""
        if self.latent_over_time:  # [b, steps, ...] -> [b, steps, features of one step]
            x = keras.layers.Reshape((features.shape[1], -1))(features)
        else:
            x = keras.layers.Flatten()(features)
        # float32 heads under any policy: log_var goes through exp in the KL and sampling.
        mean = keras.layers.Dense(self.latent_dim, name="mean", dtype="float32")(x)
        log_var = keras.layers.Dense(
            self.latent_dim, name="log_var", kernel_initializer="zeros", dtype="float32"
        )(x)
        return keras.Model(inputs, [mean, log_var], name="encoder")

    def _decoder_input(self, grid: tuple[int, ...]):
        """The decoder's input ``z`` and a dense layer that unfolds it onto the first
        feature map ``[batch, *grid]`` (``grid[0]`` is the time axis): the whole vector
        onto the whole map, or, with ``latent_over_time``, each step's vector onto that
        step's features."""
        if self.latent_over_time:
            z = keras.Input((grid[0], self.latent_dim), name="z")
            x = keras.layers.Dense(int(np.prod(grid[1:])))(z)  # [b, steps, rest of grid]
        else:
            z = keras.Input((self.latent_dim,), name="z")
            x = keras.layers.Dense(int(np.prod(grid)))(z)
        return z, keras.layers.Reshape(grid)(x)

    def to_target(self, audio):
        """Waveforms ``[batch, samples(, 1)]`` to what the model rebuilds."""
        raise NotImplementedError

    def target_to_audio(self, decoded: np.ndarray, iterations: int) -> np.ndarray:
        """Decoder outputs back to audio ``[n, samples]``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ forward pass

    def call(self, audio, training=False):
        target = self.to_target(audio)
        mean, log_var = self.encoder(target, training=training)
        z = self.sampling((mean, log_var), training=training)
        reconstruction = self.decoder(z, training=training)
        return {
            "target": target,
            "reconstruction": reconstruction,
            "mean": mean,
            "log_var": log_var,
        }

    # ------------------------------------------------------------------ loss

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.reconstruction_tracker,
            self.kl_tracker,
            self.kl_weight_tracker,
        ]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The negative ELBO with the warm-up KL weight, averaged over the batch."""
        del x, y, sample_weight
        squared = ops.square(y_pred["target"] - y_pred["reconstruction"])
        batch = ops.shape(squared)[0]
        reconstruction = ops.mean(ops.sum(ops.reshape(squared, (batch, -1)), axis=1))
        kl = ops.mean(kl_divergence(y_pred["mean"], y_pred["log_var"]))
        step = self.optimizer.iterations if self.optimizer is not None else 0
        weight = kl_weight(step, self.beta, self.warmup_steps)
        loss = reconstruction + weight * kl
        for extra in self.losses:
            loss = loss + extra
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        self.kl_weight_tracker.update_state(weight)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {metric.name: metric.result() for metric in self.metrics}

    # ------------------------------------------------------------------ making audio

    def encode(self, audio: np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log variances ``[n, *latent_shape]`` of clips ``[n, samples]``."""
        targets = self.to_target(_clips(audio, self.clip_samples))
        mean, log_var = self.encoder.predict(targets, batch_size=batch_size, verbose=0)
        return mean, log_var

    def decode_to_audio(self, z: np.ndarray, iterations: int = 32) -> np.ndarray:
        """Latents ``[n, *latent_shape]`` to audio ``[n, samples]``."""
        decoded = self.decoder.predict(np.asarray(z, np.float32), batch_size=128, verbose=0)
        return self.target_to_audio(decoded, iterations)

    def generate(self, n: int, seed: int = 0, iterations: int = 32) -> np.ndarray:
        """``n`` new clips ``[n, samples]`` from the prior ``z ~ N(0, I)``."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        z = np.random.default_rng(seed).standard_normal((n, *self.latent_shape))
        return self.decode_to_audio(z, iterations)

    def reconstruct(self, audio: np.ndarray, iterations: int = 32) -> np.ndarray:
        """Clips ``[n, samples]`` through the encoder's mean and the decoder, as audio."""
        mean, _ = self.encode(audio)
        return self.decode_to_audio(mean, iterations)

    def interpolate(
        self, audio_a: np.ndarray, audio_b: np.ndarray, steps: int = 8, iterations: int = 32
    ) -> np.ndarray:
        """``steps`` clips ``[steps, samples]`` decoded from ``(1 - a) z_a + a z_b``,
        ``a`` from 0 to 1, where ``z`` are the posterior means of two clips ``[samples]``."""
        if steps < 2:
            raise ValueError(f"steps must be at least 2, got {steps}.")
        means, _ = self.encode(np.stack([np.ravel(audio_a), np.ravel(audio_b)]))
        amounts = np.linspace(0.0, 1.0, steps).reshape((steps,) + (1,) * len(self.latent_shape))
        return self.decode_to_audio((1 - amounts) * means[0] + amounts * means[1], iterations)

    def get_config(self):
        return {
            **super().get_config(),
            "clip_samples": self.clip_samples,
            "sample_rate": self.sample_rate,
            "widths": list(self.widths),
            "latent_dim": self.latent_dim,
            "dropout": self.dropout,
            "beta": self.beta,
            "warmup_steps": self.warmup_steps,
            "seed": self.seed,
            "latent_over_time": self.latent_over_time,
        }


@keras.saving.register_keras_serializable(package="course_lib")
class SpectrogramVAE(AudioVAE):
    """A VAE on spectrogram images of fixed-length clips (see :class:`AudioVAE`).

    The target is the ``[frames, bins, 1]`` image of ``course_lib.spectrogram``; audio comes
    back through Griffin-Lim. Each encoder block halves both image axes, so ``frames`` and
    ``bins`` must be divisible by ``2 ** len(widths)``.

    Args:
        frame_length, frame_step: the spectrogram's window and hop in samples
            (``course_lib.spectrogram.SpectrogramSpec``).
        Others: as in :class:`AudioVAE`.
    """

    def __init__(
        self,
        clip_samples: int,
        sample_rate: int = 16000,
        frame_length: int = 512,
        frame_step: int = 125,
        **kwargs,
    ):
        super().__init__(clip_samples, sample_rate, **kwargs)
        self.spec = spectrogram.SpectrogramSpec(self.sample_rate, frame_length, frame_step)
        frames, bins = self.spec.shape(self.clip_samples)
        factor = 2 ** len(self.widths)
        if frames % factor or bins % factor:
            raise ValueError(
                f"a {frames} x {bins} spectrogram cannot be halved {len(self.widths)} times "
                f"(widths {self.widths}) into whole numbers; use fewer blocks or a clip "
                "length whose frame count divides evenly."
            )
        self.image_shape = (frames, bins, 1)
        # Their layers follow this model's (saved) dtype policy, not the global one.
        with accelerator.precision_policy(self.dtype_policy.name):
            self.encoder = self._build_encoder()
            self.decoder = self._build_decoder(frames // factor, bins // factor)

    def _build_encoder(self) -> keras.Model:
        image = keras.Input(self.image_shape, name="spectrogram")
        x = image
        for width in self.widths:  # each block: [b, t, k, c] -> [b, t / 2, k / 2, width]
            x = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
            x = keras.layers.Dropout(self.dropout)(x)
        return self._gaussian_encoder(image, x)

    def _build_decoder(self, frames: int, bins: int) -> keras.Model:
        z, x = self._decoder_input((frames, bins, self.widths[-1]))
        for width in reversed(self.widths):  # each block doubles both axes
            x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
        # The output layer is float32 under any policy: the loss compares it with the target.
        image = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32")(x)
        return keras.Model(z, image, name="decoder")

    def to_target(self, audio):
        """Waveforms ``[batch, samples(, 1)]`` to spectrogram images ``[batch, t, k, 1]``."""
        return spectrogram.to_spectrogram(audio, self.spec)[..., None]

    def target_to_audio(self, decoded: np.ndarray, iterations: int) -> np.ndarray:
        """Spectrogram images to audio by Griffin-Lim with ``iterations`` iterations."""
        return spectrogram.to_audio(decoded, self.clip_samples, self.spec, iterations)

    def get_config(self):
        return {
            **super().get_config(),
            "frame_length": self.spec.frame_length,
            "frame_step": self.spec.frame_step,
        }


@keras.saving.register_keras_serializable(package="course_lib")
class WaveformVAE(AudioVAE):
    """A VAE on the raw waveform ``[samples, 1]`` (see :class:`AudioVAE`), for comparison.

    Encoder blocks are stride-4 1-D convolutions (kernel 9); the decoder mirrors them with
    transposed convolutions, a ``tanh`` output, and crops to ``clip_samples``. The squared
    error on samples cannot represent phase: the decoder learns the average, quiet noise.
    """

    STRIDE = 4
    KERNEL = 9

    def __init__(self, clip_samples: int, sample_rate: int = 16000, **kwargs):
        super().__init__(clip_samples, sample_rate, **kwargs)
        factor = self.STRIDE ** len(self.widths)
        self.bottleneck = -(-self.clip_samples // factor)  # ceil
        # Their layers follow this model's (saved) dtype policy, not the global one.
        with accelerator.precision_policy(self.dtype_policy.name):
            self.encoder = self._build_encoder()
            self.decoder = self._build_decoder()

    def _build_encoder(self) -> keras.Model:
        waveform = keras.Input((self.clip_samples, 1), name="waveform")
        x = waveform
        for width in self.widths:  # each block: [b, n, c] -> [b, ceil(n / 4), width]
            x = keras.layers.Conv1D(width, self.KERNEL, strides=self.STRIDE, padding="same")(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
            x = keras.layers.Dropout(self.dropout)(x)
        return self._gaussian_encoder(waveform, x)

    def _build_decoder(self) -> keras.Model:
        z, x = self._decoder_input((self.bottleneck, self.widths[-1]))
        for width in reversed(self.widths):  # each block: [b, n, c] -> [b, 4 n, width]
            x = keras.layers.Conv1DTranspose(
                width, self.KERNEL, strides=self.STRIDE, padding="same"
            )(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
        # The output layer (and the crop after it) are float32 under any policy.
        x = keras.layers.Conv1D(1, self.KERNEL, padding="same", activation="tanh", dtype="float32")(
            x
        )
        extra = self.bottleneck * self.STRIDE ** len(self.widths) - self.clip_samples
        waveform = keras.layers.Cropping1D((0, extra), dtype="float32")(x)  # -> [b, n, 1]
        return keras.Model(z, waveform, name="decoder")

    def to_target(self, audio):
        """Waveforms ``[batch, samples(, 1)]`` as ``[batch, samples, 1]``."""
        audio = ops.convert_to_tensor(audio, "float32")
        return audio if len(audio.shape) == 3 else audio[..., None]

    def target_to_audio(self, decoded: np.ndarray, iterations: int) -> np.ndarray:
        """The decoder's waveforms ``[n, samples, 1]`` as ``[n, samples]`` (no inversion)."""
        del iterations
        return np.clip(np.asarray(decoded, np.float32)[..., 0], -1.0, 1.0)


def build_vae(
    clip_samples: int,
    cfg: VAEConfig,
    jit_compile: bool | str = "auto",
    waveform: bool = False,
    **changes,
) -> AudioVAE:
    """A compiled :class:`SpectrogramVAE` (or, with ``waveform=True``, a
    :class:`WaveformVAE`) with ``cfg``'s settings (``changes`` override them, e.g.
    ``beta=4.0``). Call it inside ``course_lib.config.strategy().scope()``."""
    cfg = cfg.replace(**changes)
    representation = (
        {} if waveform else {"frame_length": cfg.frame_length, "frame_step": cfg.frame_step}
    )
    model = (WaveformVAE if waveform else SpectrogramVAE)(
        clip_samples,
        sample_rate=cfg.sample_rate,
        **representation,
        widths=cfg.widths,
        latent_dim=cfg.latent_dim,
        dropout=cfg.dropout,
        beta=cfg.beta,
        warmup_steps=cfg.warmup_steps,
        seed=cfg.seed,
        latent_over_time=cfg.latent_over_time,
        name="waveform_vae" if waveform else "vae",
    )
    model.build((None, clip_samples, 1))
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    if model.dtype_policy.name == "mixed_float16":
        elements = clip_samples if waveform else int(np.prod(model.image_shape))
        optimizer = keras.optimizers.LossScaleOptimizer(
            optimizer, initial_scale=initial_loss_scale(elements)
        )
    training.compile_model(model, optimizer, jit_compile=jit_compile)
    return model


def initial_loss_scale(elements: int) -> float:
    """The first loss scale of mixed-precision training for a loss summed over
    ``elements`` values per clip: ``2^15 / elements`` rounded down to a power of two, at
    least 1.

    Keras' ``LossScaleOptimizer`` starts at ``2^15``, made for losses averaged over their
    elements. The VAE's loss sums the squared error over the pixels (or samples) of a
    clip, so its float16 gradients are about ``elements`` times larger and overflow at
    ``2^15``: every overflow skips a training step and halves the scale, which would
    waste the first 5 to 10 steps (measured: the quick preset's 64 x 128 images overflow
    down to a scale of 2048). The scale then adapts as usual (doubled after 2,000 steps
    without an overflow, halved on one).
    """
    exponent = 15 - int(np.ceil(np.log2(max(int(elements), 1))))
    return float(2.0 ** max(exponent, 0))


def _clips(audio: np.ndarray, clip_samples: int) -> tf.Tensor:
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
    if audio.ndim != 2 or audio.shape[1] != clip_samples:
        raise ValueError(
            f"expected clips shaped [n, {clip_samples}], got {audio.shape}; "
            "fit them with course_lib.audio.fit_length first."
        )
    return tf.constant(audio)
