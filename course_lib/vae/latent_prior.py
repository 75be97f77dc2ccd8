"""A prior fitted to where a trained VAE puts its training clips: a Gaussian mixture.

A VAE is trained against the prior ``p(z) = N(0, I)``, but with a small KL weight the
encoder's codes of real clips do not fill that Gaussian: the aggregate posterior
``q(z) = 1/N sum_i q(z | x_i)`` is lumpy (clips of one word near each other), and most
draws from ``N(0, I)`` land between the lumps, where the decoder makes mush. Ex-post
density estimation (Ghosh et al. 2020, "From variational to deterministic autoencoders",
section 4) fits a density to the posterior means ``mu(x_i)`` of the training clips after
training and draws new codes from it instead. Here that density is a Gaussian mixture
with ``K`` components (scikit-learn's EM),

    p(z) = sum_k pi_k N(z; m_k, S_k),

over the flattened codes (``[latent_dim]`` or ``[steps * latent_dim]``), with full
covariances ``S_k`` (the numbers of a code are correlated, across its time steps too),
each regularised by ``reg`` on its diagonal. A draw picks a component ``k ~ pi`` and
returns ``m_k + L_k e``, ``L_k L_k^T = S_k``, ``e ~ N(0, I)``.

Used in: 04_vae_fid.ipynb and 07_compare_models.ipynb (``course_lib.course_models``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# EM on more codes than this adds little and costs O(K n d^2) per iteration: a full
# preset's training split is subsampled (with the fit's seed) to this many clips.
MAX_FIT_CODES = 4000


class LatentMixturePrior:
    """A Gaussian mixture over a VAE's codes (module docstring).

    Args:
        components: ``K``, the number of Gaussians.
        reg: added to every covariance's diagonal (scikit-learn's ``reg_covar``), so a
            component fitted to fewer codes than dimensions stays invertible.
        seed: seed of the fit (k-means initialisation and the subsample).

    Attributes (after :meth:`fit`):
        latent_shape: the shape of one code, e.g. ``(8, 16)``.
        weights ``[K]``, means ``[K, d]``, covariances ``[K, d, d]``: the mixture, over
            the flattened codes (``d = prod(latent_shape)``).
    """

    def __init__(self, components: int = 30, reg: float = 1e-3, seed: int = 0):
        if components < 1 or reg <= 0:
            raise ValueError(f"need components >= 1 and reg > 0, got {components} and {reg}.")
        self.components = int(components)
        self.reg = float(reg)
        self.seed = int(seed)
        self.latent_shape: tuple[int, ...] | None = None

    def fit(self, codes: np.ndarray) -> LatentMixturePrior:
        """Fit the mixture to codes ``[n, *latent_shape]`` (posterior means of training
        clips); at most :data:`MAX_FIT_CODES` of them, drawn with the fit's seed.

        Raises:
            ValueError: fewer codes than components, or codes that are not finite (a
                diverged model).
        """
        from sklearn.mixture import GaussianMixture

        codes = np.asarray(codes, np.float64)
        if codes.ndim < 2 or len(codes) < self.components:
            raise ValueError(
                f"need at least {self.components} codes [n, *latent_shape] to fit "
                f"{self.components} components, got an array of shape {codes.shape}; with "
                "fewer training clips than Gaussians, lower the config's prior_components."
            )
        if not np.all(np.isfinite(codes)):
            bad = int(np.sum(~np.all(np.isfinite(codes.reshape(len(codes), -1)), axis=1)))
            raise ValueError(
                f"{bad} of {len(codes)} codes are not finite (NaN or inf): the VAE diverged; "
                "retrain it (a lower learning rate) before fitting a prior to its codes."
            )
        self.latent_shape = tuple(codes.shape[1:])
        flat = codes.reshape(len(codes), -1)
        if len(flat) > MAX_FIT_CODES:
            keep = np.random.default_rng(self.seed).choice(len(flat), MAX_FIT_CODES, replace=False)
            flat = flat[np.sort(keep)]
        mixture = GaussianMixture(
            self.components, covariance_type="full", reg_covar=self.reg, random_state=self.seed
        ).fit(flat)
        self.weights = mixture.weights_
        self.means = mixture.means_
        self.covariances = mixture.covariances_
        self._cholesky = np.linalg.cholesky(self.covariances)  # [K, d, d]
        return self

    def _check_fitted(self) -> None:
        if self.latent_shape is None:
            raise RuntimeError("fit the prior to codes first (LatentMixturePrior.fit).")

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` codes ``[n, *latent_shape]`` (float32): ``k ~ pi``, ``z = m_k + L_k e``."""
        self._check_fitted()
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        rng = np.random.default_rng(seed)
        which = rng.choice(self.components, size=n, p=self.weights / self.weights.sum())
        noise = rng.standard_normal((n, self.means.shape[1]))
        flat = self.means[which] + np.einsum("nij,nj->ni", self._cholesky[which], noise)
        return flat.reshape((n, *self.latent_shape)).astype(np.float32)


def fit_to_training_clips(
    model, batches: Iterable, components: int, seed: int = 0
) -> LatentMixturePrior:
    """A :class:`LatentMixturePrior` fitted to the posterior means, under a trained
    ``model`` (a ``course_lib.vae.AudioVAE``), of the clips of ``batches``: audio
    ``[b, samples(, 1)]`` or ``(audio, labels)`` pairs, e.g. ``course_lib.data.load_split``
    (read batch by batch, so memory holds only the codes)."""
    means = []
    for batch in batches:
        audio = batch[0] if isinstance(batch, tuple | list) else batch
        # The encoder called eagerly, batch by batch: predict would retrace for the last,
        # shorter batch, and a notebook would print TensorFlow's retracing warning.
        mean, _ = model.encoder(model.to_target(audio), training=False)
        means.append(np.asarray(mean))
    if not means:
        raise ValueError("no clips to fit the prior to: the batches were empty.")
    return LatentMixturePrior(components, seed=seed).fit(np.concatenate(means))
