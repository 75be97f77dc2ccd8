"""A 1-D U-Net denoiser: eps_theta(x_t, t, c) from a resolution pyramid over the waveform.

Ronneberger et al. 2015 (U-Net), as Ho et al. 2020 (sec. 4, appendix B) use it for
images, here over time: residual blocks at full resolution, then strided convolutions
that shorten the clip by ``strides[i]`` at each level, residual blocks at the bottom,
and the way back up (nearest-neighbour upsampling, a convolution, the skip of the same
level concatenated, residual blocks). Every block is told the diffusion step and the
word through one shared embedding,

    e = MLP(sinusoidal(t)) + embedding(c),

added to its hidden channels. With strides (4, 4, 4, 4, 4), one position at the bottom
stands for 1,024 samples and two kernel-3 convolutions there see 5 of them: more than
a one-second clip at 4 kHz, where DiffWave's dilated stack of the same cost sees 29
samples (see :attr:`UNetDenoiser.receptive_field`). A word is a shape over the whole
clip; a denoiser that sees only milliseconds of it cannot learn which word it makes.

- :class:`ConditionedResidualBlock`: two kernel-3 convolutions with the embedding added;
- :class:`UNetDenoiser`: the whole network, with :class:`DiffWaveDenoiser`'s call
  signature, so :class:`DiffusionModel` trains and samples either.

Used in: 03_diffusion.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

from course_lib.diffusion.denoiser import (
    ClassConditioned,
    DiffusionStepEmbedding,
    check_labels_given,
    spread_over_samples,
    word_table,
    word_vectors,
)
from course_lib.diffusion.settings import unet_receptive_field


@keras.saving.register_keras_serializable(package="course_lib")
class ConditionedResidualBlock(keras.layers.Layer):
    """A residual block told the step and the word (Ho et al. 2020, appendix B), the
    embedding scaling and shifting the features (FiLM, Perez et al. 2018; the adaptive
    normalisation of Dhariwal & Nichol 2021, sec. 3, without the normalisation):

        h = conv3(silu(x))
        h = (1 + W_s e) * h + W_b e       (e broadcast over time, or spread over it)
        h = conv3(silu(h))                (zero-initialised: the block starts as identity)
        output = shortcut(x) + h          (shortcut: a 1x1 when the width changes)

    The scale lets the word set how loud each part of the clip is, which a shift alone
    reaches only through the nonlinearity. Measured on two words (zero, six; 40 clips,
    DDIM, guidance 6), after 150 s of training the laptop preset on two cores: the judge
    told the clips apart 92% of the time with the scale (2,275 steps), 62% without
    (2,659 steps; chance 50%).

    Args:
        channels: output channels.
        embedding_dim: width of the embedding e.
        input_channels: channels of its input (default: ``channels``).
    """

    def __init__(
        self, channels: int, embedding_dim: int, input_channels: int | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.channels = channels
        self.embedding_dim = embedding_dim
        self.input_channels = channels if input_channels is None else input_channels
        policy = self.dtype_policy
        self.first = keras.layers.Conv1D(
            channels, 3, padding="same", kernel_initializer="he_normal", name="conv_1", dtype=policy
        )
        self.embedding_projection = keras.layers.Dense(
            channels, name="embedding_projection", dtype=policy
        )
        self.embedding_scale = keras.layers.Dense(  # zero-initialised: scale 1 at first
            channels, kernel_initializer="zeros", name="embedding_scale", dtype=policy
        )
        self.second = keras.layers.Conv1D(
            channels, 3, padding="same", kernel_initializer="zeros", name="conv_2", dtype=policy
        )
        # Made here, not in build: a saved model reloads its weights by this structure.
        self.shortcut = (
            keras.layers.Dense(channels, name="shortcut", dtype=policy)
            if self.input_channels != channels
            else None
        )

    def build(self, input_shape=None):
        self.first.build((None, None, self.input_channels))
        self.embedding_projection.build((None, self.embedding_dim))
        self.embedding_scale.build((None, self.embedding_dim))
        self.second.build((None, None, self.channels))
        if self.shortcut is not None:
            self.shortcut.build((None, None, self.input_channels))
        self.built = True

    def call(self, inputs, embedding):
        """``[b, n, C_in]`` and e ``[b, embedding_dim]`` (or ``[b, F, embedding_dim]``,
        F frames spread over the n positions) -> ``[b, n, channels]``."""
        h = self.first(ops.silu(inputs))  # [b, n, C_in] -> [b, n, C]
        bias = self.embedding_projection(embedding)  # [b, (F,) E] -> [b, (F,) C]
        scale = self.embedding_scale(embedding)
        if len(bias.shape) == 2:
            bias, scale = bias[:, None, :], scale[:, None, :]  # [b, 1, C]
        else:  # [b, n, C]
            bias = spread_over_samples(bias, ops.shape(h)[1])
            scale = spread_over_samples(scale, ops.shape(h)[1])
        h = (1.0 + scale) * h + bias
        h = self.second(ops.silu(h))
        shortcut = inputs if self.shortcut is None else self.shortcut(inputs)
        return shortcut + h

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "embedding_dim": self.embedding_dim,
            "input_channels": self.input_channels,
        }


@keras.saving.register_keras_serializable(package="course_lib")
class UNetDenoiser(ClassConditioned, keras.layers.Layer):
    """eps_theta(x_t, t, c) from a 1-D U-Net over the waveform.

        patches: [b, n, 1] -> [b, n' / p, p]              (n' = n padded to a multiple
                                                          of p prod(strides))
        input 1x1: -> [b, n' / p, C_0]
        level i (down): blocks at C_i, then conv(kernel 2 s_i, stride s_i) -> C_(i+1)
        bottom: blocks at C_last
        level i (up): upsample s_i, conv3 -> C_i, concat the level's skip, blocks at C_i
        output 1x1 (zero-initialised, float32) -> [b, n' / p, p] -> [b, n', 1], cut back
                                                          to [b, n, 1]

    With ``patch = p > 1`` the pyramid starts from patches of p samples (the
    space-to-depth by which Hoogeboom et al. 2023, "simple diffusion", avoid
    high-resolution feature maps): the clip enters as ``[b, n' / p, p]`` and the output
    1x1 gives p samples per position, so the full-resolution level, the costliest on a
    CPU, runs on p times fewer positions, and the receptive field grows p-fold.

    The label embedding has ``num_classes + 1`` rows, the last meaning "no label"
    (classifier-free guidance), as in :class:`DiffWaveDenoiser`; with ``label_frames =
    F > 0`` each row is a word-over-time sequence of F vectors, e = MLP(sinusoidal(t)) +
    E[c] in ``[F, E]``, spread over the positions of every level.

    Args:
        channels: C_0 .. C_L, one width per level (L = ``len(strides)``); the last is
            the bottom's.
        strides: how much each level shortens the clip.
        blocks_per_level: residual blocks at each level, on the way down and up.
        patch: p, samples per position at the top level (1: every sample).
        num_classes: classes to condition on; 0 for an unconditional network.
        label_frames: F, frames of the word-over-time embedding; 0 for one vector.
        step_encoding_dim, embedding_dim: the sinusoidal encoding's length and the
            width of the shared embedding e.
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 64, 128, 128, 256),
        strides: Sequence[int] = (4, 4, 4, 4, 4),
        blocks_per_level: int = 1,
        num_classes: int = 0,
        label_frames: int = 0,
        step_encoding_dim: int = 128,
        embedding_dim: int = 256,
        patch: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        channels, strides = tuple(int(c) for c in channels), tuple(int(s) for s in strides)
        if len(channels) != len(strides) + 1:
            raise ValueError(
                f"a U-Net needs one more width than strides (the bottom's), got "
                f"{len(channels)} widths and {len(strides)} strides."
            )
        if min(channels) < 1 or (strides and min(strides) < 2) or blocks_per_level < 1:
            raise ValueError(
                "widths and blocks_per_level must be >= 1 and strides >= 2, got "
                f"channels={channels}, strides={strides}, blocks_per_level={blocks_per_level}."
            )
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}.")
        if patch < 1:
            raise ValueError(f"patch must be >= 1 (samples per position), got {patch}.")
        self.patch = int(patch)
        self.channels = channels
        self.strides = strides
        self.blocks_per_level = blocks_per_level
        if label_frames < 0:
            raise ValueError(
                f"label_frames must be >= 0 (0 = one vector per clip), got {label_frames}."
            )
        self.num_classes = num_classes
        self.label_frames = label_frames
        self.step_encoding_dim = step_encoding_dim
        self.embedding_dim = embedding_dim

        policy = self.dtype_policy
        self.step_embedding = DiffusionStepEmbedding(
            step_encoding_dim, embedding_dim, name="step_embedding", dtype=policy
        )
        self.label_embedding = word_table(num_classes, embedding_dim, label_frames, policy)
        self.input_projection = keras.layers.Dense(channels[0], name="input_1x1", dtype=policy)

        def blocks(level: int, direction: str) -> list[ConditionedResidualBlock]:
            # The first block up takes the upsampled features and the level's skip.
            first_input = 2 * channels[level] if direction == "up" else channels[level]
            return [
                ConditionedResidualBlock(
                    channels[level],
                    embedding_dim,
                    input_channels=first_input if index == 0 else channels[level],
                    name=f"{direction}_{level}_{index}",
                    dtype=policy,
                )
                for index in range(blocks_per_level)
            ]

        # Flat lists (Keras saves the weights of layers in flat lists, not nested ones):
        # the blocks of level i are [i * blocks_per_level, (i + 1) * blocks_per_level).
        self.down_blocks = [block for i in range(len(strides)) for block in blocks(i, "down")]
        self.downsamplers = [
            keras.layers.Conv1D(
                channels[level + 1],
                2 * stride,
                strides=stride,
                padding="same",
                name=f"downsample_{level}",
                dtype=policy,
            )
            for level, stride in enumerate(strides)
        ]
        self.bottom_blocks = blocks(len(strides), "bottom")
        self.upsamplers = [
            keras.layers.Conv1D(
                channels[level], 3, padding="same", name=f"upsample_{level}", dtype=policy
            )
            for level in range(len(strides))
        ]
        self.up_blocks = [block for i in range(len(strides)) for block in blocks(i, "up")]
        # float32 under any policy: eps_theta enters the loss and the sampling steps.
        self.output_projection = keras.layers.Dense(
            self.patch, kernel_initializer="zeros", name="output_1x1", dtype="float32"
        )

    @property
    def multiple(self) -> int:
        """patch * prod(strides): clips are padded to a multiple of it."""
        return self.patch * math.prod(self.strides)

    def _level(self, blocks: list, level: int) -> list:
        """The blocks of one level from a flat list of blocks."""
        return blocks[level * self.blocks_per_level : (level + 1) * self.blocks_per_level]

    @property
    def receptive_field(self) -> int:
        """Input samples one output can depend on (see :func:`unet_receptive_field`)."""
        return unet_receptive_field(self.strides, self.blocks_per_level, self.patch)

    def build(self, input_shape=None):
        self.step_embedding.build((None,))
        if self.label_embedding is not None:
            self.label_embedding.build((None,))
        self.input_projection.build((None, None, self.patch))
        for level in range(len(self.strides)):
            for block in self._level(self.down_blocks, level):
                block.build((None, None, self.channels[level]))
            self.downsamplers[level].build((None, None, self.channels[level]))
        for block in self.bottom_blocks:
            block.build((None, None, self.channels[-1]))
        for level in reversed(range(len(self.strides))):
            self.upsamplers[level].build((None, None, self.channels[level + 1]))
            for block in self._level(self.up_blocks, level):
                block.build((None, None, self.channels[level]))
        self.output_projection.build((None, None, self.channels[0]))
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
        embedding = self.step_embedding(diffusion_steps)  # [b] -> [b, E]
        if labels is not None:
            word = word_vectors(self.label_embedding, labels, self.label_frames)  # [b, (F,) E]
            if self.label_frames:
                embedding = embedding[:, None, :]  # [b, 1, E]
            embedding = embedding + word  # [b, E] or [b, F, E]
        samples = ops.shape(noisy_audio)[1]
        padding = (-samples) % self.multiple
        x = ops.pad(noisy_audio, [[0, 0], [0, padding], [0, 0]])  # [b, n', 1]
        x = ops.reshape(x, (-1, (samples + padding) // self.patch, self.patch))  # [b, n'/p, p]
        x = self.input_projection(x)  # [b, n' / p, C_0]
        skips = []
        for level in range(len(self.strides)):
            for block in self._level(self.down_blocks, level):
                x = block(x, embedding)  # [b, n' / prod(s[:level]), C_level]
            skips.append(x)
            x = self.downsamplers[level](x)  # shortened by strides[level], width C_(level+1)
        for block in self.bottom_blocks:
            x = block(x, embedding)  # [b, n' / prod(s), C_L]
        for level in reversed(range(len(self.strides))):
            x = ops.repeat(x, self.strides[level], axis=1)  # nearest-neighbour upsampling
            x = self.upsamplers[level](x)  # -> C_level
            x = ops.concatenate([x, skips[level]], axis=-1)  # [b, n_level, 2 C_level]
            for block in self._level(self.up_blocks, level):
                x = block(x, embedding)
        eps = self.output_projection(ops.silu(x))  # [b, n' / p, p]
        eps = ops.reshape(eps, (-1, samples + padding, 1))  # [b, n', 1]
        return eps[:, :samples, :]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": list(self.channels),
            "strides": list(self.strides),
            "blocks_per_level": self.blocks_per_level,
            "num_classes": self.num_classes,
            "label_frames": self.label_frames,
            "step_encoding_dim": self.step_encoding_dim,
            "embedding_dim": self.embedding_dim,
            "patch": self.patch,
        }
