"""A VQ-VAE on images in [0, 1]: handwritten digits first, then spectrograms of notes.

Van den Oord et al. (2017): an encoder maps an image ``x [H, W, 1]`` to a grid of vectors
``z_e [H / f, W / f, code_dim]``, the vector quantizer replaces each by its nearest codeword
(:class:`~course_lib.vq.quantizer.VectorQuantizer`), and a decoder draws the image back.
The image is thereby described by a small grid of integers, the *code map*
``[H / f, W / f]``, with ``f = 2 ** len(widths)`` the downsampling factor. The loss is

    L = mean (x - x_hat)^2 / Var(x)  +  || sg[z_e] - e ||^2  +  beta || z_e - sg[e] ||^2

(eq. 3 of the paper; the reconstruction term is the Gaussian log-likelihood up to scale).
Dividing by the batch's pixel variance, as DeepMind's Sonnet VQ-VAE example divides by
the training set's, makes the term 1 for a model that only predicts the mean grey level
whatever the images' contrast, which keeps its balance with the quantizer's terms.

Encoder: ``len(widths)`` stride-2 4x4 convolutions with ReLU, a 3x3 convolution, residual
blocks (ReLU, 3x3 conv, ReLU, 1x1 conv, added to the input; as in the paper), then a 1x1
convolution to ``code_dim``. Decoder: the mirror image with stride-2 transposed
convolutions and a sigmoid output. Both are fully convolutional, so any image whose sides
divide by ``f`` goes through (a longer sound, a different clip length).

For audio, spectrogram images come from :func:`spectrogram_dataset` (a whole split,
computed batch by batch as it is read) or :func:`spectrogram_images` (a few clips), through
``course_lib.spectrogram``: time runs down the first image axis and frequency along the
second, so a code map is ``[frames / f, bins / f]``: one code per ``f`` frames and ``f``
frequency bins.

Used in: 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from course_lib import accelerator, spectrogram, training
from course_lib import audio as audio_lib
from course_lib.vq.quantizer import VectorQuantizer
from course_lib.vq.settings import VQConfig

LEAK = 0.2  # LeakyReLU slope: spectrograms are mostly exact zeros (silence), and plain
# ReLUs fed by them die early, which collapses every code map onto a single code.
DARK_START = -2.0  # output bias at start, sigmoid(-2) = 0.12: digits and spectrograms are
# mostly dark, and starting at sigmoid(0) = 0.5 costs many steps of a plateau during which
# the encoder drifts away from its codebook.


@keras.saving.register_keras_serializable(package="course_lib")
class VQVAE(keras.Model):
    """Encoder, vector quantizer and decoder on single-channel images in [0, 1].

    ``call(images [batch, H, W, 1])`` returns a dict: ``reconstruction`` ``[batch, H, W, 1]``,
    ``indices`` (the code map, ``[batch, H / f, W / f]`` int32) and the quantizer's
    ``vq_loss``, ``perplexity`` and ``usage`` (see ``VectorQuantizer``). ``fit`` takes the
    images alone (``model.fit(images, ...)``, or a dataset of image batches such as
    :func:`spectrogram_dataset`) and reports ``loss``, ``reconstruction``
    (squared error over pixel variance), ``vq`` (codebook + beta x commitment), ``perplexity``
    and ``usage`` (per batch).

    Args:
        image_shape: ``(H, W)`` of the training images; both must divide by
            ``2 ** len(widths)``.
        widths: channels of each stride-2 block (their number sets the downsampling).
        residual_blocks: residual blocks at the bottleneck of encoder and decoder.
        code_dim, codebook_size, beta, ema_decay, restart_threshold, data_init: the
            quantizer's settings (:class:`~course_lib.vq.quantizer.VectorQuantizer`).
        seed: seed of the quantizer's restarts and initialisation.

    Mixed precision: built under the ``mixed_float16`` dtype policy
    (``course_lib.accelerator``), the encoder and decoder convolutions compute in float16,
    while the encoder's last 1x1 convolution (the vectors that are quantized), the
    quantizer (distances, codebook, EMA updates, its losses), the decoder's output layer
    and the loss stay float32; ``compile`` wraps the optimizer in a
    ``LossScaleOptimizer``, which Keras' ``train_step`` uses to scale the loss.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32),
        widths: Sequence[int] = (32, 64),
        residual_blocks: int = 1,
        code_dim: int = 16,
        codebook_size: int = 64,
        beta: float = 0.25,
        ema_decay: float = 0.99,
        restart_threshold: float = 1.0,
        data_init: str = "kmeans++",
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(size) for size in image_shape)
        self.widths = tuple(int(width) for width in widths)
        self.residual_blocks = int(residual_blocks)
        self.seed = int(seed)
        factor = 2 ** len(self.widths)
        if (
            len(self.image_shape) != 2
            or not self.widths
            or any(size % factor or size < factor for size in self.image_shape)
        ):
            raise ValueError(
                f"an image of {self.image_shape} cannot be halved {len(self.widths)} times "
                f"(widths {self.widths}) into whole numbers; use fewer blocks or pad the "
                f"images to a multiple of {factor}."
            )
        if self.residual_blocks < 0:
            raise ValueError(f"residual_blocks must be >= 0, got {residual_blocks}.")
        self.quantizer = VectorQuantizer(
            codebook_size,
            code_dim,
            beta=beta,
            ema_decay=ema_decay,
            restart_threshold=restart_threshold,
            data_init=data_init,
            seed=seed,
            name="quantizer",
            dtype="float32",
        )
        # Their layers follow this model's (saved) dtype policy, not the global one.
        with accelerator.precision_policy(self.dtype_policy.name):
            self.encoder = self._build_encoder(code_dim)
            self.decoder = self._build_decoder(code_dim)
        self.quantizer.build((None, code_dim))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.vq_tracker = keras.metrics.Mean(name="vq")
        self.perplexity_tracker = keras.metrics.Mean(name="perplexity")
        self.usage_tracker = keras.metrics.Mean(name="usage")

    # ------------------------------------------------------------------ networks

    @property
    def downsampling_factor(self) -> int:
        """``f = 2 ** len(widths)``: one code per ``f x f`` pixels."""
        return 2 ** len(self.widths)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def code_dim(self) -> int:
        return self.quantizer.code_dim

    @property
    def decoder_reach(self) -> int:
        """How far (in codes) a code influences the decoded image: changing code ``(r, c)``
        changes pixels only within ``decoder_reach`` codes of it. The 3x3 convolution and
        each residual block at code resolution reach one code; the stride-2 transposed
        convolutions add less than 1 + 1/2 + 1/4 + ... = 2 codes; so ``residual_blocks + 3``
        is a safe bound. Decoding a crop with this margin gives the inside exactly."""
        return self.residual_blocks + 3

    def code_shape(self, image_shape: Sequence[int] | None = None) -> tuple[int, int]:
        """The code map shape ``(H / f, W / f)`` of images shaped ``image_shape``."""
        height, width = image_shape or self.image_shape
        return height // self.downsampling_factor, width // self.downsampling_factor

    def _residual_stack(self, x, width: int, prefix: str):
        for index in range(self.residual_blocks):
            branch = keras.layers.LeakyReLU(LEAK)(x)
            branch = keras.layers.Conv2D(width, 3, padding="same")(branch)
            branch = keras.layers.LeakyReLU(LEAK)(branch)
            branch = keras.layers.Conv2D(width, 1, name=f"{prefix}_residual_{index}")(branch)
            x = keras.layers.Add()([x, branch])
        return keras.layers.LeakyReLU(LEAK)(x)

    def _build_encoder(self, code_dim: int) -> keras.Model:
        image = keras.Input((None, None, 1), name="image")
        x = image
        for width in self.widths:  # [b, h, w, c] -> [b, h / 2, w / 2, width]
            x = keras.layers.Conv2D(width, 4, strides=2, padding="same")(x)
            x = keras.layers.LeakyReLU(LEAK)(x)
        x = keras.layers.Conv2D(self.widths[-1], 3, padding="same")(x)
        x = self._residual_stack(x, self.widths[-1], "encoder")
        # float32 under any policy: these vectors are compared with the codebook.
        encoded = keras.layers.Conv2D(code_dim, 1, name="to_code_dim", dtype="float32")(
            x
        )  # [b, H/f, W/f, D]
        return keras.Model(image, encoded, name="encoder")

    def _build_decoder(self, code_dim: int) -> keras.Model:
        quantized = keras.Input((None, None, code_dim), name="quantized")
        x = keras.layers.Conv2D(self.widths[-1], 3, padding="same")(quantized)
        x = self._residual_stack(x, self.widths[-1], "decoder")
        for width in reversed(self.widths):  # [b, h, w, c] -> [b, 2 h, 2 w, width]
            x = keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same")(x)
            x = keras.layers.LeakyReLU(LEAK)(x)
        image = keras.layers.Conv2D(
            1,
            3,
            padding="same",
            activation="sigmoid",
            bias_initializer=keras.initializers.Constant(DARK_START),
            dtype="float32",  # the output layer is float32 under any policy
        )(x)
        return keras.Model(quantized, image, name="decoder")

    def build(self, input_shape=None):
        """Nothing to create: encoder and decoder are built functional models and the
        quantizer is built in the constructor."""
        self.built = True

    # ------------------------------------------------------------------ forward pass

    def call(self, images, training=False):
        encoded = self.encoder(images, training=training)
        quantized = self.quantizer(encoded, training=training)
        reconstruction = self.decoder(quantized["quantized"], training=training)
        return {
            "reconstruction": reconstruction,
            "indices": quantized["indices"],
            "vq_loss": quantized["loss"],
            "perplexity": quantized["perplexity"],
            "usage": quantized["usage"],
        }

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.reconstruction_tracker,
            self.vq_tracker,
            self.perplexity_tracker,
            self.usage_tracker,
        ]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Reconstruction error plus the quantizer's losses (module docstring)."""
        del y, sample_weight
        images = ops.cast(x, "float32")
        variance = ops.stop_gradient(ops.var(images)) + 1e-6
        reconstruction = ops.mean(ops.square(images - y_pred["reconstruction"])) / variance
        loss = reconstruction + y_pred["vq_loss"]
        for extra in self.losses:
            loss = loss + extra
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.vq_tracker.update_state(y_pred["vq_loss"])
        self.perplexity_tracker.update_state(y_pred["perplexity"])
        self.usage_tracker.update_state(y_pred["usage"])
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {metric.name: metric.result() for metric in self.metrics}

    # ------------------------------------------------------------------ codes

    def _checked_images(self, images) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        factor = self.downsampling_factor
        if images.ndim != 4 or images.shape[-1] != 1:
            raise ValueError(
                f"images must be shaped [n, H, W, 1] or [n, H, W], got {images.shape}."
            )
        if images.shape[1] % factor or images.shape[2] % factor:
            raise ValueError(
                f"image sides {images.shape[1:3]} must divide by the downsampling factor "
                f"{factor}; pad them first."
            )
        return images

    def code_batches(self, images, batch_size: int = 64) -> Iterator[np.ndarray]:
        """Code maps ``[b, H / f, W / f]`` (int32), one batch at a time.

        Args:
            images: an array ``[n, H, W(, 1)]`` in [0, 1], cut into batches of
                ``batch_size``; or batches ``[b, H, W(, 1)]`` one after the other (a
                ``tf.data.Dataset`` such as :func:`spectrogram_dataset`, or an iterator),
                never held whole.
        """
        if _is_batches(images):
            batches = images
        else:
            images = self._checked_images(images)
            batches = (
                images[start : start + batch_size] for start in range(0, len(images), batch_size)
            )
        for batch in batches:
            encoded = self.encoder(self._checked_images(batch), training=False)
            flat = ops.reshape(encoded, (-1, self.code_dim))
            indices = ops.convert_to_numpy(self.quantizer.nearest_codewords(flat))
            yield indices.reshape(encoded.shape[:-1]).astype(np.int32)

    def encode_codes(self, images, batch_size: int = 64) -> np.ndarray:
        """Code maps ``[n, H / f, W / f]`` (int32) of images ``[n, H, W(, 1)]`` in [0, 1]
        (or of batches, see :meth:`code_batches`), all in one array."""
        maps = list(self.code_batches(images, batch_size))
        if not maps:
            sides = None if _is_batches(images) else self._checked_images(images).shape[1:3]
            return np.zeros((0, *self.code_shape(sides)), np.int32)
        return np.concatenate(maps)

    def decode_codes(self, codes, batch_size: int = 64) -> np.ndarray:
        """Images ``[n, h f, w f, 1]`` in [0, 1] drawn from code maps ``[n, h, w]``."""
        codes = np.asarray(codes)
        if codes.ndim == 2:
            codes = codes[None]
        if codes.ndim != 3 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(
                f"codes must be integer code maps [n, h, w], got {codes.dtype} {codes.shape}."
            )
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(
                f"codes must lie in 0..{self.codebook_size - 1}, got {codes.min()}..{codes.max()}."
            )
        images = []
        for start in range(0, codes.shape[0], batch_size):
            quantized = self.quantizer.lookup(codes[start : start + batch_size])
            images.append(ops.convert_to_numpy(self.decoder(quantized, training=False)))
        if not images:
            factor = self.downsampling_factor
            return np.zeros((0, codes.shape[1] * factor, codes.shape[2] * factor, 1), np.float32)
        return np.concatenate(images).astype(np.float32)

    def reconstruct(self, images, batch_size: int = 64) -> np.ndarray:
        """Images through the code maps and back, ``[n, H, W, 1]``."""
        return self.decode_codes(self.encode_codes(images, batch_size), batch_size)

    def get_config(self):
        quantizer = self.quantizer
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "widths": list(self.widths),
            "residual_blocks": self.residual_blocks,
            "code_dim": quantizer.code_dim,
            "codebook_size": quantizer.codebook_size,
            "beta": quantizer.beta,
            "ema_decay": quantizer.ema_decay,
            "restart_threshold": quantizer.restart_threshold,
            "data_init": quantizer.data_init,
            "seed": self.seed,
        }


def _is_batches(images) -> bool:
    """Whether ``images`` come as batches (a ``tf.data.Dataset`` or an iterator), not as
    one array."""
    return hasattr(images, "element_spec") or isinstance(images, Iterator)


def build_vq_vae(
    cfg: VQConfig,
    image_shape: Sequence[int] | None = None,
    *,
    digits: bool = False,
    jit_compile: bool | str = "auto",
    **changes,
) -> VQVAE:
    """A compiled :class:`VQVAE` with ``cfg``'s settings (``changes`` override them, e.g.
    ``widths=(16, 32)`` for a finer code map).

    Args:
        image_shape: ``(H, W)``; default: the config's spectrogram shape, or 32 x 32 with
            ``digits=True``.
        cfg: the settings.
        digits: use the digits prototype's widths and codebook.
        jit_compile: passed to ``compile``.
    """
    cfg = cfg.replace(**changes)
    if digits:
        widths, codebook_size, code_dim = (
            cfg.digit_widths,
            cfg.digit_codebook_size,
            cfg.digit_code_dim,
        )
        image_shape = image_shape or (32, 32)
    else:
        widths, codebook_size, code_dim = cfg.widths, cfg.codebook_size, cfg.code_dim
        image_shape = image_shape or cfg.image_shape
    model = VQVAE(
        image_shape,
        widths=widths,
        residual_blocks=cfg.residual_blocks,
        code_dim=code_dim,
        codebook_size=codebook_size,
        beta=cfg.commitment_beta,
        ema_decay=cfg.ema_decay,
        restart_threshold=cfg.restart_threshold,
        data_init=cfg.data_init,
        seed=cfg.seed,
        name="vq_vae_digits" if digits else "vq_vae",
    )
    model.build((None, *image_shape, 1))
    training.compile_model(model, keras.optimizers.Adam(cfg.learning_rate), jit_compile=jit_compile)
    return model


def spectrogram_images(audio, spec: spectrogram.SpectrogramSpec) -> np.ndarray:
    """Clips ``[n, samples]`` (or ``[n, samples, 1]``) to spectrogram images
    ``[n, frames, bins, 1]`` in [0, 1] (``course_lib.spectrogram.to_spectrogram``), in
    batches of 64 to bound memory.

    For a few clips (a batch, a sample): a whole split goes through
    :func:`spectrogram_dataset`, which never holds it."""
    audio = audio_lib.clip_batch(audio)
    images = [
        ops.convert_to_numpy(spectrogram.to_spectrogram(audio[start : start + 64], spec))
        for start in range(0, audio.shape[0], 64)
    ]
    if not images:
        return np.zeros((0, *spec.shape(audio.shape[1]), 1), np.float32)
    return np.concatenate(images)[..., None]


def spectrogram_dataset(
    folder: str | Path,
    split: str,
    spec: spectrogram.SpectrogramSpec,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
):
    """A split of a converted dataset as batches of spectrogram images, computed as they
    are read (``tf.data``): the split is never held in memory.

    The clips come from :func:`course_lib.data.load_split` (shuffled or in a fixed order,
    ``batch_size`` at a time) and each batch becomes images
    (``course_lib.spectrogram.to_spectrogram``) in the pipeline's worker threads, while
    the model trains on the previous batch. ``model.fit(dataset, epochs=...)`` trains on
    it, :meth:`VQVAE.code_batches` encodes it.

    Args:
        folder: the converted dataset.
        split: ``"train"``, ``"test"``, ...
        spec: the spectrogram settings; its sample rate must be the dataset's.
        batch_size: images per batch.
        shuffle: shuffle the clips (training) or keep the file order of
            :func:`~course_lib.data.load_split` (encoding, evaluation).
        seed: shuffle seed.

    Returns:
        A ``tf.data.Dataset`` of float32 images ``[batch, frames, bins, 1]`` in [0, 1].

    Raises:
        ValueError: the dataset's sample rate is not ``spec``'s.
    """
    import tensorflow as tf

    from course_lib import data

    rate = data.read_manifest(folder).sample_rate
    if rate != spec.sample_rate:
        raise ValueError(
            f"{folder} holds {rate} Hz audio but the spectrogram settings (the config's "
            f"sample_rate) expect {spec.sample_rate} Hz."
        )
    clips = data.load_split(folder, split, batch_size=batch_size, shuffle=shuffle, seed=seed)
    images = clips.map(
        lambda audio, labels: spectrogram.to_spectrogram(audio, spec)[..., None],
        num_parallel_calls=tf.data.AUTOTUNE,
    )  # [b, samples, 1] -> [b, frames, bins, 1]
    return images.prefetch(tf.data.AUTOTUNE)
