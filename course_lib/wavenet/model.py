"""The WaveNet model: causal convolutions, gated residual blocks, skip sum, softmax head.

van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio": the waveform is
mu-law quantized to 256 classes and modelled autoregressively,

    p(x) = prod_t p(x_t | x_1, ..., x_{t-1}, h)          (eq. 1, with a label h),

by a stack of causal dilated convolutions with gated residual blocks, whose skip
outputs are summed and mapped by two 1x1 convolutions to a softmax over the classes.
The architecture and defaults follow ibab/tensorflow-wavenet.

Used in: 06_wavenet.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import ops

from course_lib import training
from course_lib.wavenet.layers import CausalConv1D, GatedResidualBlock
from course_lib.wavenet.settings import WaveNetConfig, receptive_field


@keras.saving.register_keras_serializable(package="course_lib")
class WaveNet(keras.Model):
    """WaveNet over mu-law classes, optionally conditioned on a label.

    Inputs are integer classes ``[batch, time]`` (unconditional) or a tuple
    ``(classes [batch, time], labels [batch])`` when ``num_classes > 0``. The output
    at time t is the logits ``[batch, time, quantization_channels]`` of the class of
    sample t + 1; a softmax turns them into the distribution of eq. 1. All weight
    shapes follow from the arguments, so the model is built when constructed.

    Training (``fit``) expects ``x`` = the inputs above and ``y`` = the next-sample
    classes of the last ``target_length`` positions, ``[batch, target_length]``; the
    loss is the sparse categorical cross-entropy on those positions only, where the
    whole receptive field lies inside the crop (see ``training_data``).

    Args:
        dilations: one dilation per residual block.
        kernel_size: filter width of every causal convolution.
        residual_channels, dilation_channels, skip_channels: widths (see the paper's fig. 4).
        quantization_channels: mu-law classes (256).
        num_classes: labels for global conditioning; 0 for an unconditional model.
        label_channels: size of the label embedding.
        use_bias: biases in the convolutions.
        label_frames: F > 0 for word-over-time conditioning (below); 0 for global.
        clip_samples: N, the clip length the F frames share (word over time only).
        p_uncond: probability of replacing a training crop's label by "no word"
            (classifier-free guidance, below); 0 trains a conditional model only.
        seed: seed of those label draws.

    Word over time (``label_frames = F``): eq. 3's local form, h = y(t), with y a
    learned sequence per word rather than features of another signal: each label's
    embedding row holds F vectors, and the sample at clip position p is conditioned on
    vector ``floor(p * F / N)`` (clamped to 0 .. F - 1). The model then knows *where in
    the word* it is, which a receptive field of milliseconds cannot tell it. Its inputs
    are ``(classes, labels, starts [batch])``, ``starts`` being the clip position of the
    sample predicted at the first input step (negative inside the silence before a clip).

    Classifier-free guidance (Ho & Salimans 2022), for an autoregressive model as in
    Kreuk et al. 2023 (AudioGen): with ``p_uncond > 0`` the embedding has one more row,
    label ``no_label = num_classes``, and training replaces a crop's label by it with
    probability ``p_uncond``. One network then learns both p(x_t | x_<t, c) and
    p(x_t | x_<t). Generation (``generation``) can sample from the guided logits

        l_w = l(x_<t) + w * (l(x_<t, c) - l(x_<t)),

    w = 1 being the plain conditional model and w > 1 a distribution more typical of c.

    Mixed precision: built under the ``mixed_float16`` dtype policy
    (``course_lib.accelerator``), the blocks and the first head layer compute in
    float16, while the logits layer, the softmax and the loss stay float32; ``compile``
    wraps the optimizer in a ``LossScaleOptimizer``, which Keras' ``train_step`` uses to
    scale the loss. Mu-law coding happens outside the model, in float32.
    """

    def __init__(
        self,
        dilations: Sequence[int],
        kernel_size: int = 2,
        residual_channels: int = 32,
        dilation_channels: int = 32,
        skip_channels: int = 512,
        quantization_channels: int = 256,
        num_classes: int = 0,
        label_channels: int = 32,
        use_bias: bool = True,
        label_frames: int = 0,
        clip_samples: int = 0,
        p_uncond: float = 0.0,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 <= p_uncond < 1:
            raise ValueError(f"p_uncond must be in [0, 1), got {p_uncond}.")
        if p_uncond and num_classes < 1:
            raise ValueError(
                f"p_uncond={p_uncond} drops labels, but this WaveNet is unconditional "
                "(num_classes=0): set p_uncond=0."
            )
        if label_frames < 0 or (label_frames and (num_classes < 1 or clip_samples < 1)):
            raise ValueError(
                "word-over-time conditioning (label_frames > 0) needs num_classes >= 1 and "
                f"clip_samples >= 1, got label_frames={label_frames}, "
                f"num_classes={num_classes}, clip_samples={clip_samples}."
            )
        if not dilations:
            raise ValueError("dilations must name at least one layer, e.g. (1, 2, 4, 8).")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}.")
        self.dilations = tuple(int(d) for d in dilations)
        self.kernel_size = kernel_size
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.quantization_channels = quantization_channels
        self.num_classes = num_classes
        self.label_channels = label_channels
        self.use_bias = use_bias
        self.label_frames = label_frames
        self.clip_samples = clip_samples
        self.p_uncond = float(p_uncond)
        self.seed = seed
        self.label_draws = (
            keras.random.SeedGenerator(seed, name="label_draws") if self.p_uncond else None
        )
        self.receptive_field = receptive_field(self.dilations, kernel_size)

        # Sublayers follow this model's (saved) dtype policy, but for the float32 logits.
        policy = self.dtype_policy
        self.input_conv = CausalConv1D(
            residual_channels, kernel_size, 1, use_bias, name="input_conv", dtype=policy
        )
        self.label_embedding = (
            keras.layers.Embedding(
                num_classes + (1 if self.p_uncond else 0),  # + "no word" for guidance
                label_channels * max(label_frames, 1),
                name="label_embedding",
                dtype=policy,
            )
            if num_classes
            else None
        )
        # V h of eq. 3 for every block at once: [b, (t,) e] -> [b, (t,) L * 2d]
        self.condition_projection = (
            keras.layers.Dense(
                len(self.dilations) * 2 * dilation_channels,
                use_bias=False,
                name="condition",
                dtype=policy,
            )
            if num_classes
            else None
        )
        self.blocks = [
            GatedResidualBlock(
                dilation,
                kernel_size,
                residual_channels,
                dilation_channels,
                use_bias=use_bias,
                has_residual=index + 1 < len(self.dilations),
                name=f"block_{index}",
                dtype=policy,
            )
            for index, dilation in enumerate(self.dilations)
        ]
        # sum_l W_s^l z_l as one 1x1 convolution over all blocks' z: [b, t, L * d] -> [b, t, s]
        self.skip_projection = keras.layers.Dense(
            skip_channels, use_bias=use_bias, name="skip", dtype=policy
        )
        self.head_hidden = keras.layers.Dense(
            skip_channels, use_bias=use_bias, name="head_1x1", dtype=policy
        )
        # float32 under any policy: the softmax over the classes and the loss need it.
        self.head_logits = keras.layers.Dense(
            quantization_channels, use_bias=use_bias, name="head_logits", dtype="float32"
        )
        self.next_sample_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.build()

    @property
    def conditioned(self) -> bool:
        return self.num_classes > 0

    @property
    def no_label(self) -> int | None:
        """The label index that means "no word" (classifier-free guidance), or None when
        the model was built without label dropout (``p_uncond = 0``)."""
        return self.num_classes if self.p_uncond else None

    def drop_labels(self, labels):
        """Labels ``[b]`` with each replaced by :attr:`no_label` with probability
        ``p_uncond`` (training only)."""
        if labels is None or not self.p_uncond:
            return labels
        dropped = keras.random.uniform(ops.shape(labels), seed=self.label_draws) < self.p_uncond
        return ops.where(dropped, self.no_label, labels)

    def build(self, input_shape=None):
        if self.built:
            return
        self.input_conv.build((None, None, self.quantization_channels))
        if self.label_embedding is not None:
            self.label_embedding.build((None,))
            self.condition_projection.build((None, self.label_channels))
        for block in self.blocks:
            block.build((None, None, self.residual_channels))
        self.skip_projection.build((None, None, len(self.blocks) * self.dilation_channels))
        self.head_hidden.build((None, None, self.skip_channels))
        self.head_logits.build((None, None, self.skip_channels))
        self.built = True

    # ------------------------------------------------------------------ forward pass

    def split_inputs(self, inputs):
        """``inputs`` -> ``(classes [batch, time] int32, labels [batch] int32 or None,
        starts [batch] int32 or None)``."""
        starts = None
        if isinstance(inputs, Mapping):
            classes, labels = inputs["classes"], inputs.get("labels")
            starts = inputs.get("starts")
        elif isinstance(inputs, (tuple, list)):
            if len(inputs) not in (2, 3):
                raise ValueError(
                    "inputs must be classes, a pair (classes, labels) or a triple "
                    "(classes, labels, starts)."
                )
            classes, labels, *rest = inputs
            starts = rest[0] if rest else None
        else:
            classes, labels = inputs, None
        if self.label_frames and starts is None:
            raise ValueError(
                "this WaveNet is conditioned on the word over time: pass (classes, labels, "
                "starts), starts being each clip position of the first predicted sample."
            )
        if starts is not None:
            starts = ops.reshape(ops.cast(starts, "int32"), (-1,))
        if self.conditioned and labels is None:
            raise ValueError(
                f"this WaveNet is conditioned on {self.num_classes} labels: pass (classes, labels)."
            )
        if not self.conditioned and labels is not None:
            raise ValueError("this WaveNet is unconditional (num_classes=0): pass classes only.")
        classes = ops.cast(classes, "int32")
        labels = None if labels is None else ops.reshape(ops.cast(labels, "int32"), (-1,))
        return classes, labels, starts

    def label_vectors(self, labels):
        """Label embeddings ``[batch] -> [batch, label_channels]``, or ``[batch, F,
        label_channels]`` with word-over-time conditioning (None if unconditional)."""
        if labels is None:
            return None
        vectors = self.label_embedding(labels)  # [b] -> [b, e (* F)]
        if self.label_frames:
            vectors = ops.reshape(vectors, (-1, self.label_frames, self.label_channels))
        return vectors

    def frame_at(self, positions):
        """The word-over-time frame of clip positions: ``floor(p * F / N)`` clamped to
        ``0 .. F - 1`` (int32, any shape)."""
        positions = ops.maximum(ops.cast(positions, "int32"), 0)
        frames = ops.floor_divide(positions * self.label_frames, self.clip_samples)
        return ops.minimum(frames, self.label_frames - 1)

    def condition(self, labels, starts, time):
        """h of eq. 3 over ``time`` steps: ``[b, e]`` (global) or ``[b, time, e]`` (the
        word's frame at each predicted sample's clip position ``starts + i``)."""
        vectors = self.label_vectors(labels)
        if vectors is None or not self.label_frames:
            return vectors
        positions = starts[:, None] + ops.arange(time, dtype="int32")[None, :]  # [b, t]
        which = ops.one_hot(self.frame_at(positions), self.label_frames, dtype=vectors.dtype)
        return ops.matmul(which, vectors)  # [b, t, F] @ [b, F, e] -> [b, t, e]

    def condition_biases(self, condition) -> list:
        """V h of eq. 3 for each block: ``condition`` ``[b, (t or F,) e]`` (from
        :meth:`condition` or :meth:`label_vectors`) to one ``[b, (t or F,) 2 *
        dilation_channels]`` per block; ``None`` per block when unconditional."""
        if condition is None:
            return [None] * len(self.blocks)
        return ops.split(self.condition_projection(condition), len(self.blocks), axis=-1)

    def logits_from_skips(self, skip_sum):
        """The output head: ReLU, 1x1, ReLU, 1x1. ``[..., skip] -> [..., classes]``."""
        hidden = self.head_hidden(ops.relu(skip_sum))
        return self.head_logits(ops.relu(hidden))

    def layer_inputs(self, inputs) -> list:
        """What each causal convolution sees over a sequence (to prime fast generation).

        Only the residual path is computed (no skip outputs, no head).

        Returns:
            ``[one_hot [b, t, classes], x_0 [b, t, residual], ..., x_{L-1}]``: the input
            of the input convolution, then the input of every residual block.
        """
        classes, labels, starts = self.split_inputs(inputs)
        one_hot = ops.one_hot(classes, self.quantization_channels)  # [b, t] -> [b, t, q]
        condition = self.condition(labels, starts, ops.shape(classes)[1])
        biases = self.condition_biases(condition)
        hidden = self.input_conv(one_hot)  # [b, t, q] -> [b, t, r]
        seen = [one_hot, hidden]
        for block, bias in zip(self.blocks[:-1], biases, strict=False):
            hidden = block.residual_output(hidden, bias)  # [b, t, r]
            seen.append(hidden)
        return seen

    def call(self, inputs, training=False):
        """Logits of the next sample: ``[batch, time] -> [batch, time, classes]``; in
        training, labels are dropped with probability ``p_uncond``."""
        classes, labels, starts = self.split_inputs(inputs)
        if training:
            labels = self.drop_labels(labels)
        one_hot = ops.one_hot(classes, self.quantization_channels)  # [b, t] -> [b, t, q]
        condition = self.condition(labels, starts, ops.shape(classes)[1])  # [b, (t,) e]
        biases = self.condition_biases(condition)  # L x [b, (t,) 2d]
        hidden = self.input_conv(one_hot)  # [b, t, q] -> [b, t, r]
        gates = []
        for block, bias in zip(self.blocks, biases, strict=True):
            hidden, gated = block(hidden, bias)  # [b, t, r], [b, t, d]
            gates.append(gated)
        skip_sum = self.skip_projection(ops.concatenate(gates, axis=-1))  # [b, t, L * d] -> s
        return self.logits_from_skips(skip_sum)  # [b, t, s] -> [b, t, q]

    # ------------------------------------------------------------------ training

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Cross-entropy of the next-sample classes on the last ``y.shape[1]`` positions.

        Args:
            x: the inputs (unused).
            y: target classes ``[batch, target_length]``.
            y_pred: logits ``[batch, time, classes]`` from ``call``.
        """
        del x, training
        target_length = ops.shape(y)[1]
        logits = y_pred[:, -target_length:, :]  # [b, t, q] -> [b, target_length, q]
        loss = self.next_sample_loss(y, logits, sample_weight)
        for extra in self.losses:
            loss = loss + extra
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "dilations": list(self.dilations),
            "kernel_size": self.kernel_size,
            "residual_channels": self.residual_channels,
            "dilation_channels": self.dilation_channels,
            "skip_channels": self.skip_channels,
            "quantization_channels": self.quantization_channels,
            "num_classes": self.num_classes,
            "label_channels": self.label_channels,
            "use_bias": self.use_bias,
            "label_frames": self.label_frames,
            "clip_samples": self.clip_samples,
            "p_uncond": self.p_uncond,
            "seed": self.seed,
        }


def build_wavenet(
    config: WaveNetConfig,
    num_classes: int = 0,
    jit_compile: bool | str = "auto",
    clip_samples: int = 0,
) -> WaveNet:
    """A WaveNet with ``config``'s architecture, compiled with Adam.

    Call it inside ``course_lib.config.strategy().scope()`` to train on several devices.

    Args:
        config: the architecture and learning rate.
        num_classes: labels for global conditioning (0: unconditional).
        jit_compile: passed to ``compile`` (XLA).
        clip_samples: the training clips' length, for word-over-time conditioning
            (``config.label_frames > 0``).
    """
    model = WaveNet(
        config.dilations,
        kernel_size=config.kernel_size,
        residual_channels=config.residual_channels,
        dilation_channels=config.dilation_channels,
        skip_channels=config.skip_channels,
        quantization_channels=config.quantization_channels,
        num_classes=num_classes,
        label_channels=config.label_channels,
        use_bias=config.use_bias,
        label_frames=config.label_frames,
        clip_samples=clip_samples,
        p_uncond=config.p_uncond if num_classes else 0.0,
        name="wavenet",
    )
    training.compile_model(
        model, keras.optimizers.Adam(config.learning_rate), jit_compile=jit_compile
    )
    return model
