"""Sampling audio from a trained WaveNet, naively and with per-layer caches.

Both generators draw one mu-law class at a time from the model's softmax (eq. 1 of van
den Oord et al. 2016), divided by a temperature, and feed it back as the next input.

- :class:`NaiveGenerator` recomputes the whole receptive field for every new sample:
  cost per sample ~ receptive_field x layers.
- :class:`FastGenerator` is Paine et al. 2016, "Fast Wavenet Generation Algorithm":
  every causal convolution keeps a queue of the past inputs it still needs
  (``dilation * (kernel_size - 1)`` of them), so a new sample costs one step of each
  layer: cost per sample ~ layers. The queues are ring buffers ``[slots, batch,
  channels]`` held in variables and updated in place; the sampling loop is one
  compiled ``tf.function`` that runs many steps per call.

Both start from a history: ``receptive_field`` samples of silence, then the optional
seed clip (priming). Given the same history, label and seed they compute the same
distributions and draw the same samples.

With classifier-free guidance (``guidance`` w != 1, a model trained with ``p_uncond >
0``), every clip runs twice, once with its word and once with "no word", and the sample
is drawn from the guided logits ``l_u + w * (l_c - l_u)`` (see ``model``); both copies
are fed the same drawn sample.

Used in: 06_wavenet.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from tqdm.auto import tqdm

from course_lib import audio
from course_lib.wavenet.model import WaveNet


@dataclasses.dataclass
class Generation:
    """What a generator returns.

    Attributes:
        audio: float32 ``[clips, samples]`` in [-1, 1] (mu-law decoded).
        classes: int32 ``[clips, samples]``, the sampled mu-law classes.
        probabilities: float32 ``[clips, samples, quantization_channels]``, the
            distribution each sample was drawn from (only with ``keep_probabilities``).
    """

    audio: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray | None = None


def sample_next(logits, temperature: float, seed_generator: keras.random.SeedGenerator):
    """Draw one class per clip from ``softmax(logits / temperature)``.

    Args:
        logits: ``[batch, classes]``.
        temperature: > 0 sharpens (< 1) or flattens (> 1) the distribution; 0 picks the
            most likely class (greedy).
        seed_generator: the source of randomness (one draw per call).

    Returns:
        ``(classes [batch] int32, probabilities [batch, classes])``.
    """
    if temperature == 0:
        return ops.cast(ops.argmax(logits, axis=-1), "int32"), ops.softmax(logits, axis=-1)
    scaled = logits / temperature
    drawn = keras.random.categorical(scaled, 1, dtype="int32", seed=seed_generator)  # [b, 1]
    return drawn[:, 0], ops.softmax(scaled, axis=-1)


def guided_logits(logits, guidance: float):
    """Classifier-free guidance: ``[2b, q]`` logits, the b conditional rows then the b
    unconditional ones, to ``l_u + w * (l_c - l_u)`` ``[b, q]``."""
    conditional, unconditional = ops.split(logits, 2, axis=0)
    return unconditional + guidance * (conditional - unconditional)


def _check_guidance(model: WaveNet, guidance: float) -> float:
    if not guidance >= 0:
        raise ValueError(f"guidance must be >= 0 (1 = plain conditional), got {guidance}.")
    if guidance != 1 and model.no_label is None:
        raise ValueError(
            f"guidance={guidance} needs a conditioned WaveNet trained with label dropout "
            "(p_uncond > 0), which has a 'no word' label to guide against; this one has "
            "none: generate with guidance=1."
        )
    return float(guidance)


def _check_temperature(temperature: float) -> float:
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    return float(temperature)


def _labels_array(model: WaveNet, labels, batch_size: int):
    if not model.conditioned:
        if labels is not None:
            raise ValueError("this WaveNet is unconditional: generate without labels.")
        return None
    if labels is None:
        raise ValueError(
            f"this WaveNet is conditioned on {model.num_classes} labels: pass "
            "labels (one index per clip, or one for all)."
        )
    labels = np.broadcast_to(np.asarray(labels, np.int32).reshape(-1), (batch_size,))
    if labels.min() < 0 or labels.max() >= model.num_classes:
        raise ValueError(f"labels must be in 0..{model.num_classes - 1}, got {labels.tolist()}.")
    return tf.constant(labels)


def start_history(model: WaveNet, batch_size: int, seed_audio: np.ndarray | None = None):
    """The classes generation starts from: silence, then the seed clip; ``[batch, rf]``.

    Args:
        model: the WaveNet (for its receptive field and number of classes).
        batch_size: clips to generate.
        seed_audio: optional float clip(s) in [-1, 1], ``[n]`` (shared) or ``[batch, n]``;
            only its last ``receptive_field`` samples matter.
    """
    field = model.receptive_field
    silence = int(audio.mu_law_encode(0.0, model.quantization_channels))
    history = np.full((batch_size, field), silence, np.int32)
    if seed_audio is not None:
        seed_audio = np.asarray(seed_audio, np.float32)
        if seed_audio.ndim == 1:
            seed_audio = np.broadcast_to(seed_audio, (batch_size, seed_audio.shape[0]))
        if seed_audio.ndim != 2 or seed_audio.shape[0] != batch_size:
            raise ValueError(
                f"seed_audio must have shape [n] or [{batch_size}, n], got {seed_audio.shape}."
            )
        kept = seed_audio[:, -field:]
        seed_classes = np.asarray(audio.mu_law_encode(kept, model.quantization_channels))
        history = np.concatenate([history, seed_classes], axis=1)[:, -field:]
    return tf.constant(history)


class _Generator:
    """What both generators share: argument checks, the progress bar, the result."""

    def __init__(self, model: WaveNet):
        self.model = model
        # One generator of draws for the compiled loops, reseeded by every generate call.
        self._seed_generator = keras.random.SeedGenerator(0)

    def _draw(self, logits, temperature: float, guidance: float):
        """Sample the next class of every row: ``logits [rows, q]`` -> ``(fed back
        [rows], drawn [clips], probabilities [clips, q])``; with guidance, rows = 2 x
        clips (conditional, then unconditional) and both halves get the drawn class."""
        if guidance == 1:
            drawn, probabilities = sample_next(logits, temperature, self._seed_generator)
            return drawn, drawn, probabilities
        mixed = guided_logits(logits, guidance)  # [2b, q] -> [b, q]
        drawn, probabilities = sample_next(mixed, temperature, self._seed_generator)
        return ops.concatenate([drawn, drawn], axis=0), drawn, probabilities

    def generate(
        self,
        num_samples: int,
        num_clips: int = 1,
        labels: int | Sequence[int] | np.ndarray | None = None,
        seed_audio: np.ndarray | None = None,
        temperature: float = 1.0,
        seed: int | None = None,
        progress: bool = True,
        keep_probabilities: bool = False,
        guidance: float = 1.0,
    ) -> Generation:
        """Generate ``num_samples`` new samples for each of ``num_clips`` clips at once.

        Args:
            num_samples: samples to generate per clip.
            num_clips: clips in the batch.
            labels: for a conditioned model, the label index per clip (or one for all).
            seed_audio: a clip to continue (priming), ``[n]`` or ``[num_clips, n]``.
            temperature: softmax temperature; 0 = greedy.
            seed: seed of the sampling draws (None: a random one).
            progress: show a tqdm progress bar.
            keep_probabilities: also return every step's distribution.
            guidance: classifier-free guidance weight w (1: plain conditional; needs
                a model trained with ``p_uncond > 0`` otherwise).
        """
        if num_samples < 1 or num_clips < 1:
            raise ValueError(
                f"num_samples and num_clips must be >= 1, got {num_samples} and {num_clips}."
            )
        temperature = _check_temperature(temperature)
        guidance = _check_guidance(self.model, guidance)
        label_tensor = _labels_array(self.model, labels, num_clips)
        history = start_history(self.model, num_clips, seed_audio)
        if guidance != 1:  # every clip twice: with its word, then with "no word"
            no_word = tf.fill(tf.shape(label_tensor), self.model.no_label)
            label_tensor = tf.concat([label_tensor, no_word], axis=0)
            history = tf.concat([history, history], axis=0)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        self._seed_generator.state.assign(np.array([seed, 0]))
        with tqdm(
            total=num_samples, desc=type(self).__name__, unit="sample", disable=not progress
        ) as bar:
            classes, probabilities = self._run(
                history, label_tensor, num_samples, temperature, guidance, keep_probabilities, bar
            )
        classes = np.concatenate(classes, axis=1)  # [b, n]
        decoded = audio.mu_law_decode(classes, self.model.quantization_channels)
        return Generation(
            audio=np.asarray(decoded, np.float32),
            classes=classes,
            probabilities=np.concatenate(probabilities, axis=1) if keep_probabilities else None,
        )

    def _run(self, history, labels, num_samples, temperature, guidance, keep_probabilities, bar):
        raise NotImplementedError


class NaiveGenerator(_Generator):
    """Generation that runs the model over the last ``receptive_field`` samples per step.

    Args:
        model: a trained :class:`WaveNet`.
    """

    def __init__(self, model: WaveNet):
        super().__init__(model)
        self._step = tf.function(self._next_sample)

    def _next_sample(self, window, labels, temperature, guidance, position):
        inputs = window if labels is None else (window, labels)
        if self.model.label_frames:  # the window's first step predicts clip position ...
            first = position - ops.shape(window)[1] + 1
            inputs = (window, labels, ops.full(ops.shape(labels), first, dtype="int32"))
        logits = self.model(inputs)[:, -1, :]  # [b, rf] -> [b, q], the newest position
        fed_back, drawn, probabilities = self._draw(logits, temperature, guidance)
        window = ops.concatenate([window[:, 1:], fed_back[:, None]], axis=1)  # slide by one
        return window, drawn, probabilities

    def _run(self, history, labels, num_samples, temperature, guidance, keep_probabilities, bar):
        window, classes, probabilities = history, [], []
        for position in range(num_samples):  # the clip position of the sample drawn
            window, drawn, distribution = self._step(
                window, labels, temperature, guidance, tf.constant(position)
            )
            classes.append(drawn.numpy()[:, None])
            if keep_probabilities:
                probabilities.append(distribution.numpy()[:, None])
            bar.update(1)
        return classes, probabilities


class FastGenerator(_Generator):
    """Cached generation (Paine et al. 2016) for a fixed number of clips.

    Each causal convolution gets a ring buffer ``[dilation * (kernel - 1), batch,
    channels]`` of its past inputs. At step t the buffer slot ``(t + j * dilation) mod
    slots`` holds tap j's input, and the current input overwrites slot ``t mod slots``
    (the oldest, no longer needed). Create it once and call :meth:`generate` many
    times: the compiled loop is reused.

    The queues are float32, and so are the convolution steps on them, also for a model
    built under ``mixed_float16`` (whose Dense layers still compute in float16): its
    distributions then agree with :class:`NaiveGenerator`'s to float16 rounding only.

    With guidance the buffers hold every clip twice (``2 * num_clips`` rows): they are
    made for ``num_clips`` rows, and remade (with a new compiled loop) only when a call
    needs the other size.

    Args:
        model: a trained :class:`WaveNet`.
        num_clips: the batch size it generates (fixed: the buffers have this size).
        steps_per_call: samples generated per call of the compiled loop (the progress
            bar moves in these increments).
    """

    def __init__(self, model: WaveNet, num_clips: int = 1, steps_per_call: int = 200):
        super().__init__(model)
        if num_clips < 1 or steps_per_call < 1:
            raise ValueError(
                f"num_clips and steps_per_call must be >= 1, got {num_clips} and {steps_per_call}."
            )
        self.num_clips = num_clips
        self.steps_per_call = steps_per_call
        self._convolutions = [model.input_conv, *(block.dilated_conv for block in model.blocks)]
        self._buffers, self._loop = [], None
        self._make_buffers(num_clips)
        self._position = tf.Variable(0, dtype=tf.int32, trainable=False, name="position")

    def _make_buffers(self, rows: int) -> None:
        """The queues ``[slots, rows, channels]`` and their compiled loop, for ``rows``."""
        if self._buffers and self._buffers[0].shape[1] == rows:
            return
        model = self.model
        channels = [model.quantization_channels] + [model.residual_channels] * len(model.blocks)
        self._buffers = [
            tf.Variable(
                tf.zeros((conv.left_padding, rows, width)),
                trainable=False,
                name=f"queue_{index}",
            )
            for index, (conv, width) in enumerate(zip(self._convolutions, channels, strict=True))
        ]
        self._loop = tf.function(self._generate_steps)

    def generate(self, num_samples: int, num_clips: int | None = None, **options) -> Generation:
        """As :meth:`NaiveGenerator.generate`; ``num_clips`` must equal the constructor's."""
        if num_clips not in (None, self.num_clips):
            raise ValueError(
                f"this FastGenerator makes {self.num_clips} clips at once, not "
                f"{num_clips}; create another one for a different batch."
            )
        return super().generate(num_samples, self.num_clips, **options)

    def prime(self, history, labels=None):
        """Fill the buffers from a history ``[batch, >= receptive_field]`` of classes.

        The history's last sample is left out: it is the first input of the loop. When
        every clip starts from the same history and label (no seed clip, one label),
        the layers run once and their inputs are copied to every clip.
        """
        past = np.asarray(history)[:, :-1]
        self._make_buffers(past.shape[0])
        label_values = None if labels is None else np.asarray(labels)
        shared = bool((past == past[:1]).all()) and (
            label_values is None or bool((label_values == label_values[0]).all())
        )
        rows = 1 if shared else past.shape[0]
        inputs = past[:rows] if label_values is None else (past[:rows], label_values[:rows])
        if self.model.label_frames:  # the history ends just before clip position 0
            inputs = (*inputs, np.full(rows, -past.shape[1], np.int32))
        layer_inputs = self.model.layer_inputs(inputs)  # each [rows, t, c]
        for buffer, conv, values in zip(
            self._buffers, self._convolutions, layer_inputs, strict=True
        ):
            if conv.left_padding:
                newest = values[:, -conv.left_padding :, :]  # [rows, slots, c], oldest first
                newest = ops.transpose(newest, (1, 0, 2))  # -> [slots, rows, c]
                newest = ops.cast(newest, buffer.dtype)  # layer outputs: float16 if mixed
                buffer.assign(ops.broadcast_to(newest, buffer.shape))  # -> [slots, b, c]
        self._position.assign(0)

    def _queue_taps(self, buffer, conv, current, position):
        """Read a convolution's taps from its ring buffer, then store ``current``."""
        slots = conv.left_padding
        if slots == 0:
            return [current]
        reads = (position + conv.dilation_rate * tf.range(conv.kernel_size - 1)) % slots
        taps = tf.unstack(tf.gather(buffer, reads), num=conv.kernel_size - 1)  # [b, c] each
        buffer.scatter_update(tf.IndexedSlices(current[None], (position % slots)[None]))
        return [*taps, current]

    def _step(self, classes, position, condition_biases, skip_kernel, skip_bias):
        """One new sample for every clip: classes ``[b]`` -> next logits ``[b, q]``."""
        one_hot = tf.one_hot(classes, self.model.quantization_channels)  # [b] -> [b, q]
        taps = self._queue_taps(self._buffers[0], self._convolutions[0], one_hot, position)
        hidden = self.model.input_conv.step(taps)  # [b, r]
        gates = []
        for index, block in enumerate(self.model.blocks):
            taps = self._queue_taps(self._buffers[index + 1], block.dilated_conv, hidden, position)
            bias = None if condition_biases is None else condition_biases[index]
            if bias is not None and self.model.label_frames:  # [b, F, 2d] -> [b, 2d]
                bias = tf.gather(bias, self.model.frame_at(position), axis=1)
            hidden, gated = block.step(taps, bias)  # [b, r], [b, d]
            gates.append(gated)
        # sum_l skip_l(gated_l) as one product: [b, L * d] @ [L * d, s] -> [b, s]
        skip_sum = ops.matmul(ops.concatenate(gates, axis=-1), skip_kernel) + skip_bias
        return self.model.logits_from_skips(skip_sum)  # [b, s] -> [b, q]

    def _skip_weights(self):
        """The skip 1x1 over all blocks' gates: kernel ``[L * d, s]`` and bias ``[s]``
        (float32 values, as the queues)."""
        projection = self.model.skip_projection
        return projection.kernel.value, projection.bias.value if self.model.use_bias else 0.0

    def _generate_steps(
        self, classes, num_steps, condition_biases, temperature, guidance, keep_probabilities
    ):
        drawn = tf.TensorArray(tf.int32, size=num_steps)
        distributions = tf.TensorArray(tf.float32, size=num_steps if keep_probabilities else 0)
        start = self._position.read_value()
        skip_kernel, skip_bias = self._skip_weights()
        for step in tf.range(num_steps):
            logits = self._step(classes, start + step, condition_biases, skip_kernel, skip_bias)
            classes, new, probabilities = self._draw(logits, temperature, guidance)
            drawn = drawn.write(step, new)
            if keep_probabilities:
                distributions = distributions.write(step, probabilities)
        self._position.assign_add(num_steps)
        return classes, drawn.stack(), distributions.stack() if keep_probabilities else None

    def _run(self, history, labels, num_samples, temperature, guidance, keep_probabilities, bar):
        self.prime(history, labels)
        condition_biases = None
        if labels is not None:
            vectors = self.model.label_vectors(labels)  # [b, e] or [b, F, e]
            condition_biases = ops.stack(
                self.model.condition_biases(vectors)
            )  # [L, b, 2d] or [L, b, F, 2d]
        current = history[:, -1]
        classes, probabilities, done = [], [], 0
        while done < num_samples:
            count = min(self.steps_per_call, num_samples - done)
            current, drawn, distributions = self._loop(
                current,
                tf.constant(count),
                condition_biases,
                temperature,
                guidance,
                keep_probabilities,
            )
            classes.append(np.transpose(drawn.numpy()))  # [n, b] -> [b, n]
            if keep_probabilities:
                probabilities.append(np.transpose(distributions.numpy(), (1, 0, 2)))
            done += count
            bar.update(count)
        return classes, probabilities


def generate(
    model: WaveNet,
    num_samples: int,
    method: str = "fast",
    num_clips: int = 1,
    **options,
) -> Generation:
    """Generate audio with a new generator (see :meth:`NaiveGenerator.generate`).

    Args:
        model: a trained :class:`WaveNet`.
        num_samples: samples per clip.
        method: ``"fast"`` (cached, Paine et al. 2016) or ``"naive"``.
        num_clips: clips generated together in one batch.
        **options: ``labels``, ``seed_audio``, ``temperature``, ``seed``, ``progress``,
            ``keep_probabilities``, ``guidance``.
    """
    if method == "fast":
        return FastGenerator(model, num_clips).generate(num_samples, **options)
    if method == "naive":
        return NaiveGenerator(model).generate(num_samples, num_clips, **options)
    raise ValueError(f"method must be 'fast' or 'naive', not {method!r}.")
