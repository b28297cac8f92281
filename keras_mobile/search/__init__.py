"""Platform-aware search: adapt a package model to a latency budget (NetAdapt), from measured latency."""
from keras_mobile.search.latency import LatencySource, get_source
from keras_mobile.search.netadapt import netadapt
from keras_mobile.search.space import Knob, TableSpace

__all__ = ["netadapt", "get_source", "LatencySource", "TableSpace", "Knob"]
