"""The DiffWave network: predicts the noise in a noisy waveform at a diffusion step.

Kong et al. 2021, "DiffWave: A Versatile Diffusion Model for Audio Synthesis", sec. 3
and fig. 2: a stack of N residual layers with non-causal dilated convolutions (kernel
3, dilation 2^(i mod cycle)), each told the diffusion step through its own projection
of a shared step embedding, and optionally a class through a projection of a label
embedding. All layers' skip outputs are summed and mapped to one output channel, the
predicted noise eps_theta(x_t, t).

- :func:`sinusoidal_step_encoding`: the 128 numbers that encode t;
- :class:`ClassConditioned`: whether a denoiser takes labels, and its "no label" index
  (shared with the U-Net's);
- :class:`DiffusionStepEmbedding`: that encoding through two Dense + swish layers;
- :class:`DiffWaveResidualLayer`: one residual layer;
- :class:`DiffWaveDenoiser`: the whole network.

A 1x1 convolution is a Dense layer applied at every time step, so the 1x1s are
``keras.layers.Dense`` on ``[batch, samples, channels]``.

Used in: 03_diffusion.ipynb.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def sinusoidal_step_encoding(diffusion_steps, dim: int = 128):
    """DiffWave's encoding of the diffusion step (Kong et al. 2021, sec. 3.1):

        [sin(10^(0 * 4 / 63) t), ..., sin(10^(63 * 4 / 63) t),
         cos(10^(0 * 4 / 63) t), ..., cos(10^(63 * 4 / 63) t)]

    for ``dim = 128``: ``dim / 2`` frequencies spaced evenly in log scale from 1 to
    10^4 (in radians per step), sines then cosines.

    Args:
        diffusion_steps: ``[batch]`` step indices (int or float).
        dim: length of the encoding (even, >= 4).

    Returns:
        float32 ``[batch, dim]``.
    """
    if dim < 4 or dim % 2:
        raise ValueError(f"the step encoding needs an even dim >= 4, got {dim}.")
    half = dim // 2
    # Computed in float64, then rounded once: float32 powers of 10 drift at the top.
    frequencies = 10.0 ** (np.arange(half) * 4.0 / (half - 1))  # [half], 1 .. 10^4
    frequencies = ops.convert_to_tensor(frequencies.astype(np.float32))
    steps = ops.cast(ops.reshape(diffusion_steps, (-1, 1)), "float32")  # [b] -> [b, 1]
    angles = steps * frequencies[None, :]  # [b, 1] * [1, half] -> [b, half]
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)  # [b, dim]


def spread_over_samples(frames, samples: int):
    """Nearest-neighbour upsampling of a frame-rate sequence to ``samples`` steps.

    Sample ``j`` takes frame ``floor(j * F / samples)``, so F frames share the clip evenly
    (to within one sample) whether or not F divides ``samples``.

    Args:
        frames: ``[batch, F, D]``.
        samples: n, the clip's length.

    Returns:
        ``[batch, n, D]``.
    """
    num_frames = ops.shape(frames)[1]
    index = ops.floor_divide(ops.arange(samples, dtype="int32") * num_frames, samples)  # [n]
    return ops.take(frames, index, axis=1)  # [b, F, D] -> [b, n, D]


def word_table(num_classes: int, width: int, frames: int, dtype) -> keras.layers.Embedding | None:
    """The label embedding of a conditioned denoiser: ``num_classes + 1`` rows (the last
    is "no label", for classifier-free guidance), each one vector of ``width`` or, with
    ``frames = F > 0``, a word-over-time sequence of F of them; None when unconditional."""
    if not num_classes:
        return None
    return keras.layers.Embedding(
        num_classes + 1, width * max(frames, 1), name="label_embedding", dtype=dtype
    )


def word_vectors(table: keras.layers.Embedding, labels, frames: int):
    """Labels ``[batch]`` through a :func:`word_table`: ``[batch, width]``, or ``[batch, F,
    width]`` for a word-over-time table (``frames = F > 0``)."""
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    vectors = table(labels)  # [b] -> [b, width (* F)]
    if frames:
        vectors = ops.reshape(vectors, (-1, frames, table.output_dim // frames))  # [b, F, width]
    return vectors


def check_labels_given(num_classes: int, labels) -> None:
    """Labels are required by a conditioned denoiser (``num_classes > 0``; the "no
    label" index is ``num_classes``) and refused by an unconditional one."""
    if num_classes and labels is None:
        raise ValueError(
            f"this denoiser is conditioned on {num_classes} classes: pass labels "
            f"(use {num_classes} for 'no label')."
        )
    if not num_classes and labels is not None:
        raise ValueError("this denoiser is unconditional (num_classes=0): pass no labels.")


class ClassConditioned:
    """What a denoiser conditioned on ``self.num_classes`` classes tells its model (0 for
    an unconditional network): whether it takes labels, and which index means "no label"
    (the last row of its :func:`word_table`, for classifier-free guidance)."""

    num_classes: int

    @property
    def conditioned(self) -> bool:
        """True when the network takes class labels."""
        return self.num_classes > 0

    @property
    def no_label(self) -> int:
        """The label index that means "no label" (classifier-free guidance)."""
        return self.num_classes


@keras.saving.register_keras_serializable(package="course_lib")
class DiffusionStepEmbedding(keras.layers.Layer):
    """The diffusion-step embedding of DiffWave: sinusoidal encoding, FC-swish, FC-swish.

    Args:
        encoding_dim: length of :func:`sinusoidal_step_encoding` (128 in DiffWave).
        hidden_dim: width of both Dense layers (512 in DiffWave).
    """

    def __init__(self, encoding_dim: int = 128, hidden_dim: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.encoding_dim = encoding_dim
        self.hidden_dim = hidden_dim
        policy = self.dtype_policy  # sublayers follow this layer's (saved) dtype policy
        self.first = keras.layers.Dense(hidden_dim, activation="silu", name="fc_1", dtype=policy)
        self.second = keras.layers.Dense(hidden_dim, activation="silu", name="fc_2", dtype=policy)

    def build(self, input_shape=None):
        self.first.build((None, self.encoding_dim))
        self.second.build((None, self.hidden_dim))
        self.built = True

    def call(self, diffusion_steps):
        """``[batch]`` step indices -> ``[batch, hidden_dim]``."""
        encoding = sinusoidal_step_encoding(diffusion_steps, self.encoding_dim)  # [b, 128]
        return self.second(self.first(encoding))  # [b, 128] -> [b, 512] -> [b, 512]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "encoding_dim": self.encoding_dim,
            "hidden_dim": self.hidden_dim,
        }


@keras.saving.register_keras_serializable(package="course_lib")
class DiffWaveResidualLayer(keras.layers.Layer):
    """One DiffWave residual layer (Kong et al. 2021, fig. 2).

        y = dilated_conv(x + W_t e_t) + W_c e_c          (W_c e_c only when conditioned)
        z = tanh(y_filter) * sigmoid(y_gate)             (gated unit, as in WaveNet)
        residual, skip = split(conv_1x1(z))
        output = (x + residual) / sqrt(2)

    with e_t the step embedding and e_c the label embedding, both broadcast over time.
    The dilated convolution is non-causal (``"same"`` padding, kernel 3): a diffusion
    model sees the whole clip at once.

    Args:
        channels: C, the residual channels.
        dilation_rate: the dilation of the kernel-3 convolution.
        step_dim: width of the step embedding e_t.
        label_dim: width of the label embedding e_c; 0 for an unconditional layer.
    """

    def __init__(
        self,
        channels: int,
        dilation_rate: int,
        step_dim: int = 512,
        label_dim: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = channels
        self.dilation_rate = dilation_rate
        self.step_dim = step_dim
        self.label_dim = label_dim
        policy = self.dtype_policy  # sublayers follow this layer's (saved) dtype policy
        self.step_projection = keras.layers.Dense(channels, name="step_projection", dtype=policy)
        self.dilated_conv = keras.layers.Conv1D(
            2 * channels,
            kernel_size=3,
            dilation_rate=dilation_rate,
            padding="same",
            kernel_initializer="he_normal",
            name="dilated_conv",
            dtype=policy,
        )
        self.label_projection = (
            keras.layers.Dense(2 * channels, name="label_projection", dtype=policy)
            if label_dim
            else None
        )
        self.output_projection = keras.layers.Dense(
            2 * channels, kernel_initializer="he_normal", name="output_1x1", dtype=policy
        )

    def build(self, input_shape=None):
        self.step_projection.build((None, self.step_dim))
        self.dilated_conv.build((None, None, self.channels))
        if self.label_projection is not None:
            self.label_projection.build((None, self.label_dim))
        self.output_projection.build((None, None, self.channels))
        self.built = True

    def call(self, inputs, step_embedding, label_embedding=None):
        """Run the layer.

        Args:
            inputs: x, ``[batch, samples, C]``.
            step_embedding: e_t, ``[batch, step_dim]``.
            label_embedding: e_c, ``[batch, label_dim]``, or ``[batch, F, label_dim]`` for
                a word-over-time embedding whose F frames share the clip (conditioned
                layers only).

        Returns:
            ``(output [batch, samples, C], skip [batch, samples, C])``.
        """
        step_bias = self.step_projection(step_embedding)  # [b, 512] -> [b, C]
        y = self.dilated_conv(inputs + step_bias[:, None, :])  # [b, n, C] -> [b, n, 2C]
        if self.label_projection is not None:
            if label_embedding is None:
                raise ValueError("this layer is class-conditioned: pass a label embedding.")
            label_bias = self.label_projection(label_embedding)  # [b, (F,) D] -> [b, (F,) 2C]
            if len(label_bias.shape) == 2:  # one vector per clip: the same at every sample
                label_bias = label_bias[:, None, :]  # [b, 1, 2C]
            else:  # one vector per frame of the clip: spread over its samples
                label_bias = spread_over_samples(label_bias, ops.shape(inputs)[1])  # [b, n, 2C]
            y = y + label_bias
        # ops.split rather than slicing: its gradient is a cheap concatenation.
        filters, gates = ops.split(y, 2, axis=-1)  # [b, n, 2C] -> 2 x [b, n, C]
        gated = ops.tanh(filters) * ops.sigmoid(gates)
        y = self.output_projection(gated)  # [b, n, C] -> [b, n, 2C]
        residual, skip = ops.split(y, 2, axis=-1)  # 2 x [b, n, C]
        return (inputs + residual) / math.sqrt(2.0), skip

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "dilation_rate": self.dilation_rate,
            "step_dim": self.step_dim,
            "label_dim": self.label_dim,
        }


@keras.saving.register_keras_serializable(package="course_lib")
class DiffWaveDenoiser(ClassConditioned, keras.layers.Layer):
    """eps_theta(x_t, t, c): the noise DiffWave predicts in noisy audio x_t at step t.

    Kong et al. 2021, fig. 2, with class conditioning instead of a mel spectrogram:

        input 1x1 conv + ReLU: [b, n, 1] -> [b, n, C]
        N residual layers, dilation 2^(i mod cycle), each given e_t (and e_c)
        sum of skips / sqrt(N) -> 1x1 conv + ReLU -> 1x1 conv (zero-initialised) -> [b, n, 1]

    The last convolution starts at zero, so the untrained network predicts eps = 0.
    With ``num_classes > 0`` the label embedding has ``num_classes + 1`` rows: row
    ``num_classes`` is "no label", used for the unconditional half of classifier-free
    guidance (Ho & Salimans 2022).

    Word over time (``label_frames = F > 0``): each row of the label embedding is a
    sequence of F vectors rather than one, e_c = E[c] in ``[F, label_dim]``, spread over
    the clip (:func:`spread_over_samples`) and added to every layer like DiffWave's
    local mel conditioner (Kong et al. 2021, sec. 3.2): the network learns, for each
    word, what belongs where in the clip, a learned template in place of a spectrogram.
    Without it the convolutions are the same at every position, so a layer can only
    tell the start of the word from its end through its receptive field.

    Under the ``mixed_float16`` dtype policy (``course_lib.accelerator``) every layer but
    the last computes in float16 (weights stay float32); the step encoding is computed in
    float32 and the output layer is float32, so eps_theta is float32.

    Args:
        residual_channels: C.
        residual_layers: N.
        dilation_cycle: dilations run 1, 2, ..., 2^(cycle - 1), then start again.
        num_classes: classes to condition on; 0 for an unconditional network.
        label_dim: width of the label embedding.
        label_frames: F, frames of the word-over-time embedding; 0 for one vector per
            clip (DiffWave's global conditioning).
        step_encoding_dim, step_hidden_dim: the step embedding's sizes (128 and 512).
    """

    def __init__(
        self,
        residual_channels: int = 64,
        residual_layers: int = 30,
        dilation_cycle: int = 10,
        num_classes: int = 0,
        label_dim: int = 128,
        label_frames: int = 0,
        step_encoding_dim: int = 128,
        step_hidden_dim: int = 512,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if residual_channels < 1 or residual_layers < 1 or dilation_cycle < 1:
            raise ValueError(
                "residual_channels, residual_layers and dilation_cycle must be >= 1, got "
                f"{residual_channels}, {residual_layers} and {dilation_cycle}."
            )
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}.")
        if num_classes and label_dim < 1:
            raise ValueError(f"a class-conditioned network needs label_dim >= 1, got {label_dim}.")
        if label_frames < 0:
            raise ValueError(
                f"label_frames must be >= 0 (0 = one vector per clip), got {label_frames}."
            )
        self.residual_channels = residual_channels
        self.residual_layers = residual_layers
        self.dilation_cycle = dilation_cycle
        self.num_classes = num_classes
        self.label_dim = label_dim
        self.label_frames = label_frames
        self.step_encoding_dim = step_encoding_dim
        self.step_hidden_dim = step_hidden_dim

        # Sublayers follow this layer's (saved) dtype policy, but for the float32 output.
        policy = self.dtype_policy
        self.input_projection = keras.layers.Dense(
            residual_channels,
            activation="relu",
            kernel_initializer="he_normal",
            name="input_1x1",
            dtype=policy,
        )
        self.step_embedding = DiffusionStepEmbedding(
            step_encoding_dim, step_hidden_dim, name="step_embedding", dtype=policy
        )
        self.label_embedding = word_table(num_classes, label_dim, label_frames, policy)
        self.residual_stack = [
            DiffWaveResidualLayer(
                residual_channels,
                dilation_rate=2 ** (index % dilation_cycle),
                step_dim=step_hidden_dim,
                label_dim=label_dim if num_classes else 0,
                name=f"residual_{index}",
                dtype=policy,
            )
            for index in range(residual_layers)
        ]
        self.skip_projection = keras.layers.Dense(
            residual_channels,
            activation="relu",
            kernel_initializer="he_normal",
            name="skip_1x1",
            dtype=policy,
        )
        # float32 under any policy: eps_theta enters the loss and the sampling steps.
        self.output_projection = keras.layers.Dense(
            1, kernel_initializer="zeros", name="output_1x1", dtype="float32"
        )

    @property
    def dilations(self) -> tuple[int, ...]:
        """The dilation of each residual layer."""
        return tuple(layer.dilation_rate for layer in self.residual_stack)

    @property
    def receptive_field(self) -> int:
        """Input samples one output depends on (kernel 3 on both sides of each layer)."""
        return 1 + 2 * sum(self.dilations)

    def build(self, input_shape=None):
        self.input_projection.build((None, None, 1))
        self.step_embedding.build((None,))
        if self.label_embedding is not None:
            self.label_embedding.build((None,))
        for layer in self.residual_stack:
            layer.build((None, None, self.residual_channels))
        self.skip_projection.build((None, None, self.residual_channels))
        self.output_projection.build((None, None, self.residual_channels))
        self.built = True

    def call(self, noisy_audio, diffusion_steps, labels=None):
        """Predict the noise.

        Args:
            noisy_audio: x_t, ``[batch, samples, 1]``.
            diffusion_steps: t, ``[batch]`` ints in ``0 .. T - 1``.
            labels: ``[batch]`` ints in ``0 .. num_classes`` (``num_classes`` = no
                label); required when conditioned, not allowed otherwise.

        Returns:
            eps_theta, float32 ``[batch, samples, 1]``.
        """
        check_labels_given(self.num_classes, labels)
        step_embedding = self.step_embedding(diffusion_steps)  # [b] -> [b, 512]
        label_embedding = None
        if labels is not None:
            # [b] -> [b, label_dim] or [b, F, label_dim]
            label_embedding = word_vectors(self.label_embedding, labels, self.label_frames)
        x = self.input_projection(noisy_audio)  # [b, n, 1] -> [b, n, C]
        skip_sum = None
        for layer in self.residual_stack:
            x, skip = layer(x, step_embedding, label_embedding)  # [b, n, C] each
            skip_sum = skip if skip_sum is None else skip_sum + skip
        skip_sum = skip_sum / math.sqrt(self.residual_layers)
        return self.output_projection(self.skip_projection(skip_sum))  # -> [b, n, 1]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "residual_channels": self.residual_channels,
            "residual_layers": self.residual_layers,
            "dilation_cycle": self.dilation_cycle,
            "num_classes": self.num_classes,
            "label_dim": self.label_dim,
            "label_frames": self.label_frames,
            "step_encoding_dim": self.step_encoding_dim,
            "step_hidden_dim": self.step_hidden_dim,
        }
