"""Fine-tuning: recipes, tf.data pipelines, callbacks, freezing, accelerator set-up.

Only what Keras does not already give; everything returns plain Keras objects
(CosineDecay schedules, AdamW/SGD optimizers with `use_ema`, ModelCheckpoint/BackupAndRestore,
CategoricalCrossentropy with label smoothing).

    from keras_mobile import training
    train = training.image_folder_dataset("photos/", 224, validation_split=0.2)
    model = training.build_finetune_model("MobileNetV4ConvS", num_classes=5)
    r = training.recipe("MobileNetV4ConvS", epochs=10, steps_per_epoch=len(train[0]))
    r.compile(model).fit(train[0], validation_data=train[1], epochs=r.epochs,
                         callbacks=r.callbacks("ckpt/"))
"""
from keras_mobile.training.callbacks import (ProgressiveResizing, WeightDecayAnnealing,  # noqa: F401
                                             checkpoint_callbacks)
from keras_mobile.training.checkpoints import save_timm_checkpoint, timm_state_dict  # noqa: F401
from keras_mobile.training.data import (Augment, array_dataset, image_folder_dataset,  # noqa: F401
                                        input_size, mix_batch, tfds_dataset)
from keras_mobile.training.distribute import (accelerator, jax_data_parallel,  # noqa: F401
                                              mixed_precision, strategy)
from keras_mobile.training.finetune import (build_finetune_model, classifier_layers,  # noqa: F401
                                            freeze_backbone, replace_classifier, unfreeze)
from keras_mobile.training.recipes import Recipe, recipe  # noqa: F401
from keras_mobile.training.schedules import cosine_anneal, cosine_with_warmup  # noqa: F401
from keras_mobile.training.seed import set_seed  # noqa: F401
