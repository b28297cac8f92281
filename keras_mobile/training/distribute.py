"""Accelerator set-up for notebooks: pick the tf.distribute strategy (or keras.distribution on
JAX) and the mixed-precision policy for the hardware found.

Keras does the work (`tf.distribute.TPUStrategy` / `MirroredStrategy`,
`keras.distribution.DataParallel`, `keras.mixed_precision.set_global_policy`); this only chooses.
Build and compile the model inside `strategy.scope()` on TensorFlow.
"""
import contextlib
import glob
import logging
import os

log = logging.getLogger(__name__)


def accelerator():
    """"tpu", "gpu" or "cpu": what this process can train on."""
    import keras
    if keras.backend.backend() == "jax":
        import jax
        platform = jax.devices()[0].platform
        return {"tpu": "tpu", "gpu": "gpu", "cuda": "gpu", "rocm": "gpu"}.get(platform, "cpu")
    import tensorflow as tf
    if _tpu_resolver() is not None:
        return "tpu"
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def strategy(tpu=None):
    """The tf.distribute strategy for this machine: TPUStrategy on a Colab/Kaggle TPU,
    MirroredStrategy over several GPUs, else the default strategy (one GPU or the CPU).

    On the JAX backend returns a no-op context manager (use `jax_data_parallel()` instead).
    Args:
        tpu: TPU address for `TPUClusterResolver` (default: auto-detect, '' on Colab, 'local'
            on TPU VMs).
    """
    import keras
    if keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext()
    import tensorflow as tf
    resolver = _tpu_resolver(tpu)
    if resolver is not None:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        log.info("TPU: %d cores", len(tf.config.list_logical_devices("TPU")))
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def jax_data_parallel():
    """On JAX with several devices, sets `keras.distribution.DataParallel` over all of them
    (batches split along the first axis) and returns it; else None."""
    import keras
    if keras.backend.backend() != "jax":
        return None
    devices = keras.distribution.list_devices()
    if len(devices) < 2:
        return None
    dist = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(dist)
    return dist


def mixed_precision(policy="auto"):
    """Sets the global Keras dtype policy and returns its name.

    "auto": "mixed_bfloat16" on TPU, "mixed_float16" on GPU, "float32" on CPU (bfloat16 matmuls
    on most CPUs are slower than float32). keras_mobile classifiers keep float32 outputs under
    mixed policies (the softmax runs in float32), and BatchNormalization/LayerNormalization
    compute their statistics in float32. With "mixed_float16", `compile` wraps the optimizer in
    a LossScaleOptimizer automatically.
    """
    import keras
    if policy == "auto":
        policy = {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}.get(accelerator(), "float32")
    if policy not in ("float32", "mixed_float16", "mixed_bfloat16"):
        raise ValueError(f"policy must be 'auto', 'float32', 'mixed_float16' or 'mixed_bfloat16', "
                         f"got {policy!r}")
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _tpu_resolver(tpu=None):
    """A TPUClusterResolver when a TPU is attached, else None. Only asks when the environment
    says so (Colab's COLAB_TPU_ADDR, TPU_NAME, or /dev/accel* on TPU VMs such as Kaggle's):
    the resolver's own probing queries the GCE metadata server, slow off Google Cloud."""
    import tensorflow as tf
    if tpu is None:
        if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
            tpu = ""            # the resolver reads these variables itself
        elif glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
            tpu = "local"
        else:
            return None
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        log.warning("no TPU (%s)", e)
        return None
