"""Building blocks. Block functions emit standard Keras layers into a functional graph
(like keras.applications), named by timm module path with "-" for "." (`naming.py`), so weight
conversion, QAT, profiling
and TFLite export all see plain Conv2D/BatchNormalization layers. Custom leaf layers
(LayerScale, StochasticDepth, MultiQueryAttentionCore) are registered serialisable."""
from keras_mobile.layers.activations import get_activation
from keras_mobile.layers.choice_mix import ChoiceMix
from keras_mobile.layers.conv_bn_act import batch_norm, conv2d, conv_bn_act
from keras_mobile.layers.conv_block import conv_block
from keras_mobile.layers.fused_ib import fused_inverted_bottleneck
from keras_mobile.layers.inverted_residual import depthwise_separable, inverted_residual
from keras_mobile.layers.layer_scale import LayerScale
from keras_mobile.layers.mobile_mqa import MultiQueryAttentionCore, mobile_attention
from keras_mobile.layers.squeeze_excite import squeeze_excite
from keras_mobile.layers.stochastic_depth import StochasticDepth, residual_add
from keras_mobile.layers.uib import universal_inverted_bottleneck
