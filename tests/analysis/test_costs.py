"""MAC formulas of analysis/costs.py on layers whose count is known by hand."""
import keras

from keras_mobile.analysis.costs import mha_macs


def test_attention_macs_count_the_output_projection_width():
    q = (1, 10, 16)                                   # 10 tokens of width 16; 2 heads of key_dim 4
    core = 10 * 16 * 8 * 3 + 2 * 10 * 10 * (4 + 4)    # q/k/v projections + q@k^T and attn@v
    assert mha_macs(keras.layers.MultiHeadAttention(2, 4), [q]) == core + 10 * 8 * 16
    assert mha_macs(keras.layers.MultiHeadAttention(2, 4, output_shape=7), [q]) == core + 10 * 8 * 7
    assert mha_macs(keras.layers.MultiHeadAttention(2, 4, output_shape=(7,)), [q]) == core + 10 * 8 * 7
