"""A small training task shared by the train tests and their multi-device worker."""

import jax.numpy as jnp
import numpy as np
import optax

from jaxsnn import coding, data, losses, nn, train


def tiny_data(n_train=200, n_test=100):
    """A Yin-Yang subset, TTFS-encoded (float64 when x64 is on)."""
    (xtr, ytr), (xte, yte) = data.load_yinyang(seed=0, n_train=n_train, n_test=n_test)
    dt = jnp.zeros(()).dtype
    return ((np.asarray(coding.ttfs_encode(xtr), dt), ytr), (np.asarray(coding.ttfs_encode(xte), dt), yte))


def tiny_task(hidden=8, dropout=0.0):
    """SRM 4-hidden-3 on Yin-Yang; traced hyperparameters ``lr`` and ``tau``; dropout uses the step key."""
    model = nn.SRMMLP((hidden, 3), layer_kwargs=dict(bias_time=0.0, weight_std=2.0), spike_dropout=dropout)

    def init(key, hp):
        return model.init(key, jnp.zeros((1, 4)))

    def loss(params, batch, key, hp):
        x, y = batch
        t, _ = model.apply(params, x, train=True, rngs={"dropout": key})
        ce = losses.ttfs_cross_entropy(t, y, temperature=hp["tau"], t_cap=8.0)
        reg = sum(losses.weight_sum_hinge(p["kernel"]) for p in params["params"].values())
        return ce + reg, dict(acc=jnp.mean(coding.first_spike_class(t) == y))

    def evaluate(params, batch, hp):
        x, y = batch
        t, _ = model.apply(params, x)
        return dict(acc=jnp.mean(coding.first_spike_class(t) == y), silent=jnp.mean(~jnp.isfinite(t)))

    return train.Task(init, loss, lambda hp: optax.adam(hp["lr"]), evaluate)
