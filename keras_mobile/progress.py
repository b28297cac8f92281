"""Progress bars that stay readable in logs.

tqdm redraws its bar up to ten times a second; on a terminal or in a notebook widget that
updates one line, but in a CI log or a redirected file every redraw is a new chunk of text.
`progress_bar` is `tqdm.auto.tqdm` that, when stderr is not a terminal (and the bar is not a
notebook widget), redraws at most every NON_TTY_INTERVAL seconds.
"""
import sys

NON_TTY_INTERVAL = 30.0


def progress_bar(iterable=None, enabled=True, **kwargs):
    """`tqdm.auto.tqdm(iterable, **kwargs)`; `enabled=False` turns it off (library `progress=` flags)."""
    from tqdm.auto import tqdm
    notebook = tqdm.__module__.startswith("tqdm.notebook")
    stream = kwargs.get("file") or sys.stderr
    if not notebook and not (hasattr(stream, "isatty") and stream.isatty()):
        kwargs.setdefault("mininterval", NON_TTY_INTERVAL)
    return tqdm(iterable, disable=not enabled, **kwargs)
