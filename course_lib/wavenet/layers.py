"""WaveNet's building blocks: the causal dilated convolution and the gated residual block.

Both layers have two ways to run:

- ``call``: over a whole sequence ``[batch, time, channels]`` (training, naive generation);
- ``step``: for one new time step, given the few past inputs the layer looks at
  (fast generation, Paine et al. 2016, "Fast Wavenet Generation Algorithm").

Used in: 06_wavenet.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="course_lib")
class CausalConv1D(keras.layers.Layer):
    """A dilated convolution whose output at time t sees only inputs at times <= t.

    van den Oord et al. 2016, "WaveNet", section 2.1 and figure 3: the input is padded
    on the left with ``dilation_rate * (kernel_size - 1)`` zeros, so that

        y[t] = sum_j x[t - dilation_rate * (kernel_size - 1 - j)] @ W[j] + b,

    for j = 0 .. kernel_size - 1 (tap 0 is the oldest input). Output and input have
    the same length and are aligned: no time shift.

    Args:
        filters: output channels.
        kernel_size: taps per output (2 in WaveNet).
        dilation_rate: spacing between taps, in samples.
        use_bias: add a bias per output channel.
        kernel_initializer: initializer of the ``[kernel_size, in, filters]`` kernel.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        dilation_rate: int = 1,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters < 1 or kernel_size < 1 or dilation_rate < 1:
            raise ValueError(
                "filters, kernel_size and dilation_rate must be positive, got "
                f"{filters}, {kernel_size} and {dilation_rate}."
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @property
    def left_padding(self) -> int:
        """How many past inputs each output needs besides the current one."""
        return self.dilation_rate * (self.kernel_size - 1)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(self.kernel_size, in_channels, self.filters),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.bias = (
            self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
            if self.use_bias
            else None
        )

    def call(self, inputs):
        """Filter a sequence: ``[batch, time, in] -> [batch, time, filters]``."""
        # Each tap is a time-shifted copy of the input times one kernel slice; for the
        # kernel sizes WaveNet uses (2 or 3) this is faster on CPU than an atrous conv.
        padded = ops.pad(inputs, [[0, 0], [self.left_padding, 0], [0, 0]])  # [b, p + t, in]
        length = ops.shape(inputs)[1]
        outputs = None
        for tap in range(self.kernel_size):
            start = tap * self.dilation_rate
            shifted = padded[:, start : start + length, :]  # [b, t, in]
            term = ops.matmul(shifted, self.kernel[tap])  # [b, t, in] -> [b, t, filters]
            outputs = term if outputs is None else outputs + term
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def step(self, taps: Sequence):
        """One output from its ``kernel_size`` inputs, oldest first.

        Args:
            taps: ``kernel_size`` tensors ``[batch, in]``: x[t - d(k-1)], ..., x[t - d], x[t].

        Returns:
            ``[batch, filters]``, equal to ``call(...)[:, t]``.
        """
        if len(taps) != self.kernel_size:
            raise ValueError(f"step needs {self.kernel_size} taps, got {len(taps)}.")
        window = ops.concatenate(list(taps), axis=-1)  # [b, k * in]
        kernel = ops.reshape(self.kernel, (-1, self.filters))  # [k, in, f] -> [k * in, f]
        outputs = ops.matmul(window, kernel)  # [b, k * in] -> [b, f]
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="course_lib")
class GatedResidualBlock(keras.layers.Layer):
    """One WaveNet layer: gated dilated convolution and residual output.

    van den Oord et al. 2016, eq. 2 (gated activation) and eq. 3 (global conditioning):

        z = tanh(W_f * x + V_f h) ⊙ sigmoid(W_g * x + V_g h),
        residual = x + W_r z,      skip = W_s z,

    with ``*`` the causal dilated convolution, ``h`` a label embedding (optional) and
    W_r, W_s 1x1 convolutions. The filter and gate convolutions are computed as one
    convolution with ``2 * dilation_channels`` outputs. The block returns z itself: the
    model computes every block's V h at once, and every block's skip W_s z as one 1x1
    convolution over all blocks' z (``WaveNet.condition_biases``, ``WaveNet.skip_projection``):
    the same sums, with two weights for all blocks rather than three per block. The
    full preset has 128 weights, not 215, and the first ``fit`` traced a training step of
    10,376 graph operations, not 14,509, in 19 CPU-s, not 26 to 31 (Adam updates each
    weight with its own operations).

    Args:
        dilation_rate: the dilation of this layer's convolution.
        kernel_size: taps of the convolution.
        residual_channels: channels of the input and residual output.
        dilation_channels: channels of z.
        use_bias: biases in the convolutions.
        has_residual: False for the last block of a stack, whose residual output feeds
            nothing (it then has no W_r and returns None as residual).
    """

    def __init__(
        self,
        dilation_rate: int,
        kernel_size: int = 2,
        residual_channels: int = 32,
        dilation_channels: int = 32,
        use_bias: bool = True,
        has_residual: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dilation_rate = dilation_rate
        self.kernel_size = kernel_size
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.use_bias = use_bias
        self.has_residual = has_residual
        policy = self.dtype_policy  # sublayers follow this block's (saved) dtype policy
        self.dilated_conv = CausalConv1D(
            2 * dilation_channels,
            kernel_size,
            dilation_rate,
            use_bias,
            name="filter_and_gate",
            dtype=policy,
        )
        self.residual_projection = (
            keras.layers.Dense(residual_channels, use_bias=use_bias, name="residual", dtype=policy)
            if has_residual
            else None
        )

    def build(self, input_shape):
        self.dilated_conv.build(input_shape)
        if self.residual_projection is not None:
            self.residual_projection.build((*input_shape[:-1], self.dilation_channels))

    @property
    def left_padding(self) -> int:
        """How many past inputs the block needs besides the current one."""
        return self.dilated_conv.left_padding

    def _gate(self, pre_activation):
        filters = pre_activation[..., : self.dilation_channels]
        gates = pre_activation[..., self.dilation_channels :]
        return ops.tanh(filters) * ops.sigmoid(gates)  # eq. 2

    def _gated_sequence(self, inputs, condition_bias):
        pre_activation = self.dilated_conv(inputs)  # [b, t, r] -> [b, t, 2d]
        if condition_bias is not None:
            if len(condition_bias.shape) == 2:
                condition_bias = condition_bias[:, None, :]  # global: the same at every step
            pre_activation = pre_activation + condition_bias  # + V h, [b, (1 or t), 2d]
        return self._gate(pre_activation)  # [b, t, 2d] -> [b, t, d]

    def residual_output(self, inputs, condition_bias=None):
        """Only the residual output of :meth:`call`."""
        if self.residual_projection is None:
            raise ValueError("this block has no residual output (has_residual=False).")
        return inputs + self.residual_projection(self._gated_sequence(inputs, condition_bias))

    def call(self, inputs, condition_bias=None):
        """Run the block over a sequence.

        Args:
            inputs: ``[batch, time, residual_channels]``.
            condition_bias: V h of eq. 3 for a conditioned model, ``[batch, 2 *
                dilation_channels]`` (global) or ``[batch, time, 2 * dilation_channels]``
                (one per step); None for an unconditional one.

        Returns:
            ``(residual [batch, time, residual_channels] or None, z [batch, time,
            dilation_channels])``.
        """
        gated = self._gated_sequence(inputs, condition_bias)  # [b, t, d]
        residual = (
            None if self.residual_projection is None else (inputs + self.residual_projection(gated))
        )
        return residual, gated

    def step(self, taps: Sequence, condition_bias=None):
        """The block at one time step (fast generation).

        Args:
            taps: ``kernel_size`` inputs ``[batch, residual_channels]``, oldest first; the
                last one is the current input.
            condition_bias: ``[batch, 2 * dilation_channels]``, this block's share of
                ``WaveNet.condition_biases``.

        Returns:
            ``(residual [batch, residual_channels] or None, z [batch, dilation_channels])``.
        """
        pre_activation = self.dilated_conv.step(taps)  # [b, 2d]
        # Under mixed_float16 the Dense sublayers return float16 while step() runs on
        # the taps' dtype (float32 buffers): cast to it (no-op in float32).
        if condition_bias is not None:
            pre_activation = pre_activation + ops.cast(condition_bias, pre_activation.dtype)
        gated = self._gate(pre_activation)  # [b, d]
        residual = (
            None
            if self.residual_projection is None
            else (taps[-1] + ops.cast(self.residual_projection(gated), taps[-1].dtype))
        )
        return residual, gated

    def get_config(self):
        return {
            **super().get_config(),
            "dilation_rate": self.dilation_rate,
            "kernel_size": self.kernel_size,
            "residual_channels": self.residual_channels,
            "dilation_channels": self.dilation_channels,
            "use_bias": self.use_bias,
            "has_residual": self.has_residual,
        }
