"""TableSpace.scaled (the benchmark's uniform width-multiplier baseline) and row models as table blocks."""
import numpy as np
import pytest

from keras_mobile.applications import MobileNetV3Small, MobileNetV4ConvS
from keras_mobile.search import TableSpace


@pytest.fixture(scope="module")
def v4():
    return TableSpace.from_model(MobileNetV4ConvS(weights=None, input_shape=(32, 32, 3), classes=10))


def test_scaled_matches_the_v3_alpha_constructor_widths():
    """A scaled space has MobileNetV3's own `alpha` widths (the builder's rounding), row by row."""
    full = TableSpace.from_model(MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10))
    alpha = TableSpace.from_model(MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10, alpha=0.75))
    scaled = full.scaled(0.75)
    assert scaled.rows == alpha.rows and scaled.spec.stem == alpha.spec.stem


def test_scaled_v4_builds_with_residual_ties_and_fewer_macs(v4):
    half = v4.scaled(0.5)
    widths = half.widths()
    for i, r in enumerate(half.rows):
        assert r.skip == v4.rows[i].skip
        if r.skip:
            assert widths[i + 1] == widths[i]
        assert r.out % 8 == 0 and r.out >= 0.9 * 0.5 * v4.rows[i].out
    model = half.build().model
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.asarray(model(x)).shape == (2, 10)
    assert TableSpace.from_model(model).rows == half.rows        # the built model reads back as the space
    assert model.count_params() < 0.5 * v4.build().model.count_params()


def test_scaled_identity_and_bad_multiplier(v4):
    assert v4.scaled(1.0).rows == v4.rows
    with pytest.raises(ValueError, match="multiplier must be in"):
        v4.scaled(0)


def test_row_model_is_one_table_block_keyed_as_in_the_full_model(v4):
    """The search prices a row cut out as its own model: the latency table must see it as the same
    single block (residual add included, one input) as in the whole model, so a row measured
    for a proposal and the block measured in a whole model share one table entry."""
    from keras_mobile.analysis import latency_table as lt
    built = v4.build()
    full = {b.key() for b in lt.blocks(built.model)}
    for i in range(len(v4.rows)):
        blocks = lt.blocks(v4.row_model(i, built.row_inputs[i]))
        assert len(blocks) == 1 and len(blocks[0].external_inputs()) == 1, (i, [b.name for b in blocks])
        assert blocks[0].key() in full, i
