"""The vector-quantization bottleneck of a VQ-VAE, with Jukebox's fixes for dead codes.

Van den Oord et al. (2017), "Neural Discrete Representation Learning": each encoder output
``z_e`` (a vector of ``code_dim`` numbers) is replaced by its nearest codeword ``e_k`` of a
learned codebook of ``codebook_size`` vectors,

    k = argmin_j || z_e - e_j ||^2,        z_q = e_k,                              (eq. 1-2)

and the loss adds two terms to the reconstruction error (``sg`` is the stop-gradient):

    L_vq = || sg[z_e] - e_k ||^2  +  beta || z_e - sg[e_k] ||^2                     (eq. 3)
           (codebook loss: moves e_k)  (commitment loss: keeps z_e near its codeword)

``argmin`` has no gradient, so the decoder's gradient is copied to the encoder unchanged
(the straight-through estimator), written with an explicit stop-gradient:

    z_q = z_e + sg[e_k - z_e]        (forward: e_k; backward: d z_q / d z_e = I).

Dhariwal et al. (2020), "Jukebox", section 3.1 and appendix: plain VQ often uses only a few
codewords (codebook collapse). Three remedies, each optional here:

- **EMA codebook** (``ema_decay > 0``, also van den Oord et al., appendix A.1): instead of
  the codebook loss, each codeword follows the running mean of the encoder outputs assigned
  to it, with Laplace-smoothed cluster sizes ``N_k``:

      N_k <- d N_k + (1 - d) n_k,          m_k <- d m_k + (1 - d) sum_{i: k_i = k} z_i,
      N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j,        e_k = m_k / N~_k.

- **Random restarts** (``restart_threshold > 0``): a running count of how often each
  codeword is chosen per batch, ``u_k <- d u_k + (1 - d) n_k``; a codeword with
  ``u_k < threshold`` has been unused for a while and is moved onto a random encoder
  output of the current batch (drawn, here, in proportion to its quantization error).
- **Initialisation from data** (``data_init``): on the first training batch the codebook
  is set to random encoder outputs (``"random"``) or to k-means++ seeds (Arthur &
  Vassilvitskii 2007) of them (``"kmeans++"``), so it starts where the data is.

Used in: 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

import keras
from keras import ops

DATA_INITS = ("none", "random", "kmeans++")


@keras.saving.register_keras_serializable(package="course_lib")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-codeword quantization with a straight-through gradient (van den Oord 2017).

    ``call(encoded [..., code_dim], training=False)`` returns a dict:

    - ``quantized`` ``[..., code_dim]``: the codewords, with the straight-through gradient;
    - ``indices`` ``[...]`` int32: which codeword each vector became;
    - ``codebook_loss``, ``commitment_loss``: the two terms of eq. 3 (scalars, means over
      vectors and dimensions);
    - ``loss``: ``codebook_loss + beta * commitment_loss`` (add it to the reconstruction
      loss in ``compute_loss``; with an EMA codebook the first term trains nothing);
    - ``perplexity``: ``exp(H)`` of the batch's code histogram, from 1 (one code) to
      ``codebook_size`` (all codes equally often);
    - ``usage``: the fraction of codewords used at least once in the batch.

    With ``training=True`` the layer also updates its non-trainable state, like batch
    normalization's moving statistics: the data initialisation, the EMA codebook and the
    restarts (see the module docstring). The codebook is a trainable weight only when
    ``ema_decay == 0``.

    Args:
        codebook_size: number of codewords ``K``.
        code_dim: size ``D`` of each codeword (the encoder's last axis).
        beta: weight of the commitment loss (0.25 in the paper).
        ema_decay: decay ``d`` of the EMA codebook (0.99 in Jukebox); 0 learns the
            codebook by gradient descent on the codebook loss instead.
        restart_threshold: restart a codeword whose running count of uses per batch is
            below this (Jukebox: 1.0); 0 turns restarts off.
        usage_decay: decay of that running count; default ``ema_decay`` (Jukebox uses the
            EMA cluster sizes themselves), or 0.99 without an EMA codebook. The count of
            a codeword that is never chosen falls below 1 after about ``1 / (1 - decay)``
            batches (``log(u_0) / -log(decay)``): 0.99 suits long training, 0.9 short runs.
        data_init: ``"none"``, ``"random"`` (random encoder outputs of the first training
            batch) or ``"kmeans++"`` (k-means++ seeding on that batch).
        epsilon: Laplace smoothing of the EMA cluster sizes.
        codebook_initializer: initializer of the codebook before any data is seen.
        seed: seed of the restarts and of the data initialisation.

    The layer computes in float32 under any dtype policy (``dtype`` defaults to
    ``"float32"``; float16 inputs are cast): under ``mixed_float16`` the distances
    ``||z||^2 - 2 z.e + ||e||^2`` would cancel catastrophically in float16 and the EMA
    updates (``d N_k + (1 - d) n_k`` with ``d = 0.99``) would round away.
    """

    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        beta: float = 0.25,
        ema_decay: float = 0.0,
        restart_threshold: float = 0.0,
        usage_decay: float | None = None,
        data_init: str = "none",
        epsilon: float = 1e-5,
        codebook_initializer="random_uniform",
        seed: int = 0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # float32 under any policy (docstring)
        super().__init__(**kwargs)
        if codebook_size < 2 or code_dim < 1:
            raise ValueError(
                f"need codebook_size >= 2 and code_dim >= 1, got {codebook_size} and {code_dim}."
            )
        if usage_decay is None:
            usage_decay = ema_decay if ema_decay > 0 else 0.99
        if not 0.0 <= ema_decay < 1.0 or not 0.0 <= usage_decay < 1.0:
            raise ValueError(
                f"ema_decay and usage_decay must be in [0, 1), got {ema_decay} and {usage_decay}."
            )
        if beta < 0 or restart_threshold < 0 or epsilon <= 0:
            raise ValueError(
                f"need beta >= 0, restart_threshold >= 0 and epsilon > 0, got {beta}, "
                f"{restart_threshold} and {epsilon}."
            )
        if data_init not in DATA_INITS:
            raise ValueError(f"data_init must be one of {DATA_INITS}, not {data_init!r}.")
        self.codebook_size = int(codebook_size)
        self.code_dim = int(code_dim)
        self.beta = float(beta)
        self.ema_decay = float(ema_decay)
        self.restart_threshold = float(restart_threshold)
        self.usage_decay = float(usage_decay)
        self.data_init = data_init
        self.epsilon = float(epsilon)
        self.codebook_initializer = keras.initializers.get(codebook_initializer)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def uses_ema(self) -> bool:
        """True when the codebook follows EMA updates rather than gradients."""
        return self.ema_decay > 0.0

    def build(self, input_shape):
        if input_shape[-1] != self.code_dim:
            raise ValueError(
                f"the quantizer expects vectors of code_dim={self.code_dim} on the last axis, "
                f"got shape {tuple(input_shape)}."
            )
        size, dim = self.codebook_size, self.code_dim
        self.codebook = self.add_weight(
            shape=(size, dim),
            initializer=self.codebook_initializer,
            trainable=not self.uses_ema,
            name="codebook",
        )
        # EMA state (Jukebox): cluster sizes start at 1 and sums at the codebook, so an
        # unused codeword keeps its place: e_k = d^t e_k / d^t.
        self.ema_cluster_size = self.add_weight(
            shape=(size,), initializer="ones", trainable=False, name="ema_cluster_size"
        )
        self.ema_sum = self.add_weight(
            shape=(size, dim), initializer="zeros", trainable=False, name="ema_sum"
        )
        self.ema_sum.assign(self.codebook)
        self.code_usage = self.add_weight(
            shape=(size,),
            initializer=keras.initializers.Constant(max(self.restart_threshold, 1.0)),
            trainable=False,
            name="code_usage",
        )
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized"
        )

    # ------------------------------------------------------------------ forward pass

    def squared_distances(self, flat):
        """``|| z_i - e_k ||^2`` for every vector of ``flat [n, code_dim]`` and every
        codeword, ``[n, K]``, as ``||z||^2 - 2 z.e + ||e||^2`` (one matrix product), in
        float32 (float16 vectors are cast)."""
        flat = ops.cast(flat, "float32")
        codebook = ops.cast(self.codebook, "float32")
        return (
            ops.sum(ops.square(flat), axis=1, keepdims=True)
            - 2.0 * ops.matmul(flat, ops.transpose(codebook))
            + ops.sum(ops.square(codebook), axis=1)[None, :]
        )

    def nearest_codewords(self, flat):
        """Indices ``[n]`` of the nearest codeword of each vector of ``flat [n, code_dim]``."""
        return ops.cast(ops.argmin(self.squared_distances(flat), axis=1), "int32")

    def lookup(self, indices):
        """The codewords ``[..., code_dim]`` of integer ``indices [...]``."""
        indices = ops.cast(indices, "int32")
        return ops.take(ops.convert_to_tensor(self.codebook), indices, axis=0)

    def call(self, encoded, training=False):
        encoded = ops.cast(encoded, "float32")
        flat = ops.reshape(encoded, (-1, self.code_dim))  # [..., D] -> [n, D]
        if training and self.data_init != "none":
            self._initialize_from_data(ops.stop_gradient(flat))
        distances = self.squared_distances(flat)  # [n, K]
        flat_indices = ops.cast(ops.argmin(distances, axis=1), "int32")  # [n]
        codewords = self.lookup(flat_indices)  # [n, D]
        quantized = ops.reshape(codewords, ops.shape(encoded))
        codebook_loss = ops.mean(ops.square(ops.stop_gradient(encoded) - quantized))
        commitment_loss = ops.mean(ops.square(encoded - ops.stop_gradient(quantized)))
        # z_q = z_e + sg[e_k - z_e]: e_k going forward, the identity going backward.
        straight_through = encoded + ops.stop_gradient(quantized - encoded)

        counts = ops.sum(ops.one_hot(flat_indices, self.codebook_size), axis=0)  # [K]
        if training:
            if self.uses_ema:
                self._ema_update(ops.stop_gradient(flat), flat_indices, counts)
            if self.restart_threshold > 0:
                errors = ops.stop_gradient(ops.min(distances, axis=1))  # [n]
                self._restart_unused(ops.stop_gradient(flat), counts, errors)
        return {
            "quantized": straight_through,
            "indices": ops.reshape(flat_indices, ops.shape(encoded)[:-1]),
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            "loss": codebook_loss + self.beta * commitment_loss,
            "perplexity": perplexity(counts),
            "usage": ops.mean(ops.cast(counts > 0, "float32")),
        }

    # ------------------------------------------------------------------ state updates

    def _initialize_from_data(self, flat):
        """On the first training batch, put the codebook on the data (then never again)."""

        def from_data():
            if self.data_init == "kmeans++":
                return kmeans_plus_plus(flat, self.codebook_size, self.seed_generator)
            rows = keras.random.randint(
                (self.codebook_size,), 0, ops.shape(flat)[0], seed=self.seed_generator
            )
            return ops.take(flat, rows, axis=0)

        done = self.initialized > 0.5
        codebook = ops.cond(done, lambda: ops.convert_to_tensor(self.codebook), from_data)
        self.codebook.assign(codebook)
        self.ema_sum.assign(ops.where(done, self.ema_sum, codebook))
        self.ema_cluster_size.assign(
            ops.where(done, self.ema_cluster_size, ops.ones_like(self.ema_cluster_size))
        )
        self.initialized.assign(1.0)

    def _ema_update(self, flat, indices, counts):
        """``N_k``, ``m_k`` and ``e_k = m_k / N~_k`` (module docstring)."""
        decay = self.ema_decay
        one_hot = ops.one_hot(indices, self.codebook_size)  # [n, K]
        sums = ops.matmul(ops.transpose(one_hot), flat)  # [K, n] @ [n, D] -> [K, D]
        cluster_size = decay * self.ema_cluster_size + (1.0 - decay) * counts
        ema_sum = decay * self.ema_sum + (1.0 - decay) * sums
        total = ops.sum(cluster_size)
        smoothed = (
            (cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        )  # Laplace smoothing: no cluster size is ever 0
        self.ema_cluster_size.assign(cluster_size)
        self.ema_sum.assign(ema_sum)
        self.codebook.assign(ema_sum / smoothed[:, None])

    def _restart_unused(self, flat, counts, errors):
        """Move codewords used less than ``restart_threshold`` times per batch (running
        count) onto random encoder outputs of this batch (Jukebox).

        The outputs are drawn with probability proportional to their squared distance to
        their codeword, ``errors [n]`` (as in k-means++ seeding), rather than uniformly:
        spectrograms are mostly silence, whose many identical encoder outputs would
        otherwise receive most restarts, as duplicates of a codeword already in use.
        """
        usage = self.usage_decay * self.code_usage + (1.0 - self.usage_decay) * counts
        dead = usage < self.restart_threshold  # [K]
        logits = ops.log(ops.maximum(errors, 1e-12))[None, :]  # all equal: uniform draws
        rows = keras.random.categorical(logits, self.codebook_size, seed=self.seed_generator)[0]
        candidates = ops.take(flat, rows, axis=0)  # [K, D]
        fresh = max(self.restart_threshold, 1.0)
        self.codebook.assign(ops.where(dead[:, None], candidates, self.codebook))
        self.code_usage.assign(ops.where(dead, fresh, usage))
        if self.uses_ema:
            # A restarted codeword starts a new running mean at its new place.
            self.ema_sum.assign(ops.where(dead[:, None], candidates, self.ema_sum))
            self.ema_cluster_size.assign(ops.where(dead, 1.0, self.ema_cluster_size))

    def compute_output_spec(self, encoded, training=False):
        scalar = keras.KerasTensor((), "float32")
        return {
            "quantized": keras.KerasTensor(encoded.shape, "float32"),
            "indices": keras.KerasTensor(encoded.shape[:-1], "int32"),
            "codebook_loss": scalar,
            "commitment_loss": scalar,
            "loss": scalar,
            "perplexity": scalar,
            "usage": scalar,
        }

    def get_config(self):
        return {
            **super().get_config(),
            "codebook_size": self.codebook_size,
            "code_dim": self.code_dim,
            "beta": self.beta,
            "ema_decay": self.ema_decay,
            "restart_threshold": self.restart_threshold,
            "usage_decay": self.usage_decay,
            "data_init": self.data_init,
            "epsilon": self.epsilon,
            "codebook_initializer": keras.initializers.serialize(self.codebook_initializer),
            "seed": self.seed,
        }


def perplexity(counts):
    """``exp(-sum_k p_k log p_k)`` of a histogram ``counts [K]`` (``p = counts / sum``).

    1 when one code takes everything, ``K`` when all ``K`` codes are used equally: the
    "effective number" of codes in use.
    """
    counts = ops.cast(counts, "float32")
    probabilities = counts / ops.maximum(ops.sum(counts), 1.0)
    entropy = -ops.sum(probabilities * ops.log(ops.maximum(probabilities, 1e-12)))
    return ops.exp(entropy)


def kmeans_plus_plus(points, k: int, seed_generator):
    """``k`` rows of ``points [n, D]`` chosen by k-means++ seeding (Arthur & Vassilvitskii
    2007): the first uniformly, each next one with probability proportional to its squared
    distance to the nearest row already chosen. Returns ``[k, D]``.

    If fewer than ``k`` distinct rows exist, the remaining picks are uniform (duplicates).
    """
    points = ops.convert_to_tensor(points, "float32")
    count = ops.shape(points)[0]
    draws = keras.random.uniform((k,), seed=seed_generator)  # one uniform number per pick
    first = ops.take(points, ops.cast(draws[0] * ops.cast(count, "float32"), "int32"), axis=0)
    centers = ops.zeros((k, ops.shape(points)[1]), "float32")
    centers = ops.where((ops.arange(k) == 0)[:, None], first[None, :], centers)
    nearest = ops.sum(ops.square(points - first[None, :]), axis=1)  # [n]

    def pick(i, state):
        centers, nearest = state
        total = ops.sum(nearest)
        # Inverse-CDF sampling of an index with probability nearest / total.
        below = ops.cumsum(nearest) <= draws[i] * total
        by_distance = ops.sum(ops.cast(below, "int32"))  # first index past the draw
        uniform = ops.cast(draws[i] * ops.cast(count, "float32"), "int32")
        index = ops.minimum(ops.where(total > 0, by_distance, uniform), count - 1)
        chosen = ops.take(points, index, axis=0)  # [D]
        centers = ops.where((ops.arange(k) == i)[:, None], chosen[None, :], centers)
        nearest = ops.minimum(nearest, ops.sum(ops.square(points - chosen[None, :]), axis=1))
        return centers, nearest

    centers, _ = ops.fori_loop(1, k, pick, (centers, nearest))
    return centers
