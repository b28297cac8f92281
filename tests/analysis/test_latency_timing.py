"""Timing invokes in turn: the order of the calls and which call each time belongs to."""
import keras
import numpy as np

from keras_mobile.analysis import latency_table as lt
from keras_mobile.analysis.latency_timing import (invoke_times, open_for_timing, rewrite_inputs,
                                                  round_robin_times, times_in_turn)


class _FakeClock:
    """A clock that only the fake invokes advance: each call costs a known, distinct time."""

    def __init__(self):
        self.now, self.calls = 0.0, []

    def __call__(self):
        return self.now

    def work(self, name, seconds):
        def call():
            self.calls.append(name)
            self.now += seconds
        return call


def test_invokes_run_in_turn_and_each_time_is_its_own_call():
    c = _FakeClock()
    invokes = [c.work("a", 1.0), c.work("b", 2.0), c.work("c", 4.0)]
    before = [None, c.work("prep-b", 100.0), None]     # untimed: its 100 s must not reach b's times
    times = round_robin_times(invokes, 1, runs=3, warmup=1, clock=c, before=before)
    assert times == [[1.0] * 3, [2.0] * 3, [4.0] * 3]
    # one warmup round, then three timed rounds, each in model order; the preparation right before b
    assert c.calls == ["a", "b", "c"] + ["a", "prep-b", "b", "c"] * 3


def test_a_spent_budget_stops_after_min_runs_and_before_must_match_the_invokes():
    """What benchmarks' interleaved rounds rely on (bench_workers.interleaved calls this loop)."""
    import pytest
    c = _FakeClock()
    times = round_robin_times([c.work("a", 1.0), c.work("b", 1.0)], 1, runs=50, warmup=0, seconds=0.0,
                              clock=c, min_runs=4)
    assert [len(t) for t in times] == [4, 4]
    with pytest.raises(ValueError, match="one entry per invoke: 1 for 2"):
        round_robin_times([c.work("a", 1.0), c.work("b", 1.0)], 1, clock=c, before=[None])


def test_invoke_times_is_one_invoke_in_turn():
    c = _FakeClock()
    assert invoke_times(c.work("a", 0.5), 1, runs=4, warmup=2, clock=c) == [0.5] * 4
    assert c.calls == ["a"] * 6


def test_rewrite_inputs_writes_the_captured_input_again():
    x = keras.Input(batch_shape=(1, 4))
    it = open_for_timing(lt.block_tflite(keras.Model(x, keras.layers.Dense(4)(x))))
    index = it.get_input_details()[0]["index"]
    first = it.get_tensor(index).copy()
    write = rewrite_inputs(it)
    it.set_tensor(index, np.zeros_like(first))
    write()
    np.testing.assert_array_equal(it.get_tensor(index), first)


def test_a_model_s_slices_timed_in_turn_get_one_time_per_round_each():
    x = keras.Input(batch_shape=(1, 8, 8, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", name="conv_stem")(x)
    y = keras.layers.Conv2D(8, 1, name="blocks-0-0-conv_pw")(y)
    m = keras.Model(x, keras.layers.Conv2D(4, 1, name="blocks-1-0-conv_pw")(y))
    its = [open_for_timing(lt.block_tflite(b.to_model())) for b in lt.blocks(m)]
    times = times_in_turn(its, 1, runs=5, warmup=1)
    assert [len(t) for t in times] == [5, 5, 5] and all(v > 0 for t in times for v in t)
