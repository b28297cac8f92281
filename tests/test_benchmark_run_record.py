"""A benchmark's run record names the code it ran: a tree that moved during a long run says so."""
from tests.benchmark_module import load_benchmark


def test_a_commit_that_changed_during_the_run_is_recorded_and_rendered(monkeypatch):
    setup = load_benchmark("_setup")
    commits = iter(["abc1234", "abc1234", "def5678"])
    monkeypatch.setattr(setup, "commit", lambda: next(commits))
    run = setup.Run("x.py", ["--flag"])
    same = run.record()
    assert same["commit"] == "abc1234" and "commit_end" not in same
    assert "(commit abc1234)." in setup.run_line(same)
    moved = run.record()
    assert moved["commit"] == "abc1234" and moved["commit_end"] == "def5678"
    assert "commit abc1234 at the start, def5678 at the end: the code changed during the run" in setup.run_line(moved)
