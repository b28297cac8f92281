"""Progress bars do not flood logs: on a non-terminal stream they redraw at most every 30 s."""
import io
import time

from keras_mobile.progress import NON_TTY_INTERVAL, progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _redraws(stream):
    for _ in progress_bar(range(40), file=stream, desc="work"):
        time.sleep(0.01)                       # 0.4 s: tqdm's default 0.1 s interval would redraw ~4 times
    return stream.getvalue().count("\r")


def test_non_tty_bar_redraws_only_at_start_and_end():
    assert NON_TTY_INTERVAL >= 10
    log, term = io.StringIO(), _Terminal()
    assert _redraws(log) <= 2 < _redraws(term)


def test_disabled_bar_writes_nothing():
    log = io.StringIO()
    assert list(progress_bar(range(3), enabled=False, file=log)) == [0, 1, 2]
    assert log.getvalue() == ""
