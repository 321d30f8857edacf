import io

from rich.console import Console

from mixopt.progress import SwarmProgress


def test_progress_counts_and_estimates_the_rest(monkeypatch):
    clock = iter([100.0, 110.0, 110.0, 110.0, 120.0, 120.0, 120.0])
    monkeypatch.setattr("mixopt.progress.time.monotonic", lambda: next(clock))
    buf = io.StringIO()
    p = SwarmProgress(total=4, reused=2, console=Console(file=buf, width=200))
    p.finished("p1", "ok", 3.5)
    assert p.done == 1
    p.finished("p2", "diverged", None)
    out = buf.getvalue()
    assert "4 proxies to train, 2 already finished" in out
    assert "1/4  p1 ok target 3.5000  elapsed 0:10  eta 0:30" in out
    assert "2/4  p2 diverged" in out and "eta 0:20" in out
