"""Handwritten digit images for prototyping the VQ-VAE before it meets audio.

Full mode: MNIST (LeCun et al. 1998; 60,000 training and 10,000 test images of 28 x 28,
downloaded once by ``keras.datasets.mnist``). Quick mode: scikit-learn's bundled digits
(1,797 images of 8 x 8 with 17 grey levels, no download), upsampled to 28 x 28 by bilinear
interpolation. Both are padded with 2 black pixels per side to 32 x 32, so a convolutional
encoder can halve them up to five times, and scaled to [0, 1].

Used in: 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib import config

MNIST_SIDE = 28
PADDED_SIDE = 32
QUICK_TEST_FRACTION = 0.2


def pad_to_32(images: np.ndarray) -> np.ndarray:
    """``[n, 28, 28]`` images to float32 ``[n, 32, 32, 1]``, zero-padded on every side."""
    images = np.asarray(images, np.float32)
    if images.ndim != 3 or images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise ValueError(f"expected images shaped [n, 28, 28], got {images.shape}.")
    margin = (PADDED_SIDE - MNIST_SIDE) // 2
    return np.pad(images, ((0, 0), (margin, margin), (margin, margin)))[..., None]


def upsample_bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize of ``[n, h, w]`` images to ``[n, side, side]`` (pixel centres
    aligned, as in ``tf.image.resize``)."""
    images = np.asarray(images, np.float32)
    _, height, width = images.shape

    def weights(size: int):
        position = (np.arange(side) + 0.5) * size / side - 0.5
        position = np.clip(position, 0, size - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, size - 1)
        return low, high, (position - low).astype(np.float32)

    row_low, row_high, row_t = weights(height)
    col_low, col_high, col_t = weights(width)
    rows = (
        images[:, row_low, :] * (1 - row_t)[None, :, None]
        + images[:, row_high, :] * row_t[None, :, None]
    )  # [n, side, w]
    return rows[:, :, col_low] * (1 - col_t) + rows[:, :, col_high] * col_t  # [n, side, side]


def load_digit_images(
    mode: config.Mode, limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Training and test digit images, float32 ``[n, 32, 32, 1]`` in [0, 1].

    Args:
        mode: ``"full"`` (MNIST, downloads on first use), ``"quick"``, ``"laptop"`` or
            ``"rehearsal"`` (scikit-learn's 8 x 8 digits, offline, at MNIST's shape): a
            notebook passes ``config.mode()``.
        limit: keep at most this many images of each split.
        seed: the quick split's shuffle (80% training, 20% test).

    Returns:
        ``(train, test)``.
    """
    if mode not in config.MODES:
        raise ValueError(f"mode must be one of {', '.join(config.MODES)}, not {mode!r}.")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    if mode == "full":
        import keras

        (train, _), (test, _) = keras.datasets.mnist.load_data()
        train, test = train.astype(np.float32) / 255.0, test.astype(np.float32) / 255.0
    else:
        from sklearn.datasets import load_digits

        small = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8], 17 levels
        images = np.clip(upsample_bilinear(small, MNIST_SIDE), 0.0, 1.0)
        order = np.random.default_rng(seed).permutation(images.shape[0])
        test_count = round(QUICK_TEST_FRACTION * images.shape[0])
        test, train = images[order[:test_count]], images[order[test_count:]]
    return pad_to_32(train[:limit]), pad_to_32(test[:limit])
