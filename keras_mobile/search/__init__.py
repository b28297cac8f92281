"""Platform-aware search: fit a package model to a latency budget (NetAdapt, latency-driven slimming),
from measured latency."""
from keras_mobile.search.latency import LatencySource, get_source
from keras_mobile.search.netadapt import netadapt
from keras_mobile.search.slimming import slim, slim_path, train_supernet
from keras_mobile.search.space import Knob, TableSpace
from keras_mobile.search.supernet import SuperNet

__all__ = ["netadapt", "slim", "slim_path", "train_supernet", "SuperNet", "get_source", "LatencySource",
           "TableSpace", "Knob"]
