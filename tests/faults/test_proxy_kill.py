"""Crash and resume: kill -9 of an isolated proxy's process mid-training never takes the flow down.

The swarm runs with `runtime.isolate: true`, so each proxy trains in a `mixopt.models.launch` child of
the flow's process. A watcher thread finds those children in /proc and SIGKILLs them once their
training loop has started (a train shard is memory-mapped): proxy A on its first attempt only (the
Prefect retry trains it), proxy B on every attempt (recorded failed after its retry). The flow ends
normally with everything else stored; running the same experiment again trains B and nothing else.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import defaultdict

import pytest

from mixopt.flows.swarm import train_swarm
from mixopt.tasks import swarm as swarm_stage
from mixopt.warehouse import read_only_query
from tests.faults.util import is_training, launch_children
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


class Killer(threading.Thread):
    """Watches this process's training children; kills A's first attempt and every attempt of B."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.launches: dict[str, set[int]] = defaultdict(set)  # run id -> pids seen
        self.killed: dict[str, list[int]] = defaultdict(list)
        self.order: list[str] = []  # run ids in the order their first process appeared

    def victim(self, run_id: str) -> bool:
        """A (the first run id seen) is killed once, B (the second) every time, the rest never."""
        if run_id in self.order[1:2]:
            return True
        return run_id in self.order[:1] and not self.killed[run_id]

    def run(self) -> None:
        while not self.stop.is_set():
            for pid, run_id in launch_children().items():
                if run_id not in self.order:
                    self.order.append(run_id)
                self.launches[run_id].add(pid)
                if pid not in self.killed[run_id] and self.victim(run_id) and is_training(pid):
                    os.kill(pid, signal.SIGKILL)
                    self.killed[run_id].append(pid)
            time.sleep(0.01)


def _rows(path, sql):
    return read_only_query(path, sql)[1]


def test_kill_9_of_a_proxy_is_retried_or_recorded_and_a_rerun_trains_only_the_missing(
        tmp_path, prefect_harness, monkeypatch):
    cfg = tiny_config(tmp_path, final={"enabled": False},
                      swarm={"n_proxies": 3, "tokens": 8192},
                      runtime={"workers": 3, "retries": 1, "isolate": True})
    calls: dict[str, int] = defaultdict(int)
    original = swarm_stage.train_and_spool

    def counted(exp, spec):
        calls[spec.run_id] += 1
        return original(exp, spec)

    monkeypatch.setattr(swarm_stage, "train_and_spool", counted)
    killer = Killer()
    killer.start()
    try:
        first = train_swarm(config=cfg)
    finally:
        killer.stop.set()
        killer.join()

    a, b = killer.order[:2]
    assert len(killer.killed[a]) == 1 and len(killer.killed[b]) == 2, dict(killer.killed)
    assert first.trained == 3 and first.ok == 2 and first.failed == 1
    assert calls[a] == 2 and calls[b] == 2 and sum(calls.values()) == 5  # A and B retried once
    assert {r: len(p) for r, p in killer.launches.items()} == calls  # one child process per attempt
    wh = cfg.runtime.warehouse
    status = dict(_rows(wh, "select run_id, status from proxy_runs"))
    assert status[a] == "ok" and status[b] == "failed" and sorted(status.values()) == ["failed", "ok", "ok"]
    (error,), = _rows(wh, f"select error from proxy_runs where run_id = '{b}'")
    assert "killed by signal 9" in error
    bad = _rows(wh, "select r.run_id from proxy_runs r left join evals e using (run_id) where r.status = 'ok' "
                    "group by r.run_id having count(e.run_id) <> 3")
    assert bad == []  # every stored proxy has a held-out loss for each of the 3 domains

    calls.clear()
    second = train_swarm(config=cfg)  # the same experiment again: only B is missing
    assert dict(calls) == {b: 1}
    assert second.trained == 1 and second.reused == 2 and second.ok == 1
    assert _rows(wh, "select status, count(*) from proxy_runs group by status") == [("ok", 3)]
    assert not list((tmp_path / "out" / "spool").rglob("*.json"))  # everything spooled was recorded
