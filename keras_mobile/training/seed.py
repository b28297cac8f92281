"""Reproducible runs: the same seed gives the same numbers on one machine."""


def set_seed(seed, deterministic=True):
    """Seeds Python, NumPy, TensorFlow and Keras (`keras.utils.set_random_seed`: weight
    initialisation, dropout, the global seed behind tf.data shuffles and augmentation) and, with
    `deterministic`, makes TensorFlow's ops deterministic
    (`tf.config.experimental.enable_op_determinism`: reductions in a fixed order, stateful random
    ops in tf.data maps run in order). Determinism can cost speed (mostly on GPU) and stays on
    for the rest of the process. Pass the same `seed` to the data pipelines
    (`array_dataset(..., seed=)` etc.) as well.

    Same seed, same machine, same versions: identical weights and metrics. Other hardware or
    thread counts may still differ in the last bits.
    """
    import keras
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    return seed
