"""search.training: the fine-tuning loss matches what the model outputs (probabilities or logits)."""
import pytest

import keras_mobile
from keras_mobile.search.training import compile_classifier


@pytest.mark.parametrize("build,activation,from_logits", [
    (keras_mobile.MobileNetV3Small, "softmax", False),
    (keras_mobile.MobileNetV3Small, None, True),
    # two Dense heads averaged, then the softmax layer: the last Dense has no activation
    (keras_mobile.EfficientFormerL1, "softmax", False),
    (keras_mobile.EfficientFormerL1, None, True),
])
def test_loss_reads_the_output_not_the_last_dense(build, activation, from_logits):
    model = build(weights=None, classes=10, classifier_activation=activation)
    compile_classifier(model, 1e-3, eager=True)
    assert model.loss.get_config()["from_logits"] is from_logits
