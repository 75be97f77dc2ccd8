"""The VAE's two pieces of probability: sampling a latent, and its KL divergence.

Used in: 04_vae_fid.ipynb (through ``course_lib.vae.model``).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="course_lib")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: ``z = mu + exp(log_var / 2) * eps``, ``eps ~ N(0, I)``.

    Writing the sample as a deterministic function of ``(mu, log_var)`` and outside noise
    lets gradients flow from the decoder into the encoder (Kingma & Welling, 2014, eq. 10).

    Inputs ``(mean [batch, latent], log_var [batch, latent])``; output ``[batch, latent]``.
    With ``training=False`` it returns the mean.

    Args:
        seed: seed of the noise.

    It computes in float32 under any dtype policy (``dtype`` defaults to ``"float32"``):
    under ``mixed_float16``, ``exp(log_var / 2)`` overflows float16 for ``log_var > 22``.
    """

    def __init__(self, seed: int = 0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mean, log_var = inputs
        if not training:
            return mean
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * noise

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def kl_divergence(mean, log_var):
    """``KL(N(mu, diag(sigma^2)) || N(0, I))`` per example, ``[batch, *latent] -> [batch]``.

    ``KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)`` (Kingma & Welling, 2014,
    appendix B), summed over every number ``j`` of an example's latent (a vector, or a
    sequence of vectors). Computed in float32 (float16 inputs are cast): ``exp``
    overflows float16.
    """
    mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
    terms = 1.0 + log_var - ops.square(mean) - ops.exp(log_var)
    return -0.5 * ops.sum(terms, axis=tuple(range(1, len(terms.shape))))
