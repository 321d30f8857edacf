"""Where a long swarm is: one line per finished proxy with done/total, elapsed time and an ETA.

Plain lines rather than a live bar, so that it never fights with Lightning's own progress bar
(which shows each training) for the terminal.
"""

from __future__ import annotations

import time

from rich.console import Console


class SwarmProgress:
    def __init__(self, total: int, reused: int = 0, enabled: bool = True, console: Console | None = None):
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = time.monotonic()
        self.console = console or Console(stderr=True, highlight=False)
        if enabled:
            self.console.print(f"[bold]swarm[/]: {total} proxies to train, {reused} already finished (reused)")

    def eta_s(self) -> float | None:
        """Seconds left, from the mean time per finished proxy so far."""
        if not self.done:
            return None
        return (time.monotonic() - self.start) / self.done * (self.total - self.done)

    def finished(self, run_id: str, status: str, target: float | None) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = self.eta_s()
        loss = f"target {target:.4f}" if target is not None else ""
        colour = {"ok": "green", "diverged": "yellow"}.get(status, "red")
        self.console.print(
            f"[bold]swarm[/] {self.done}/{self.total}  {run_id} [{colour}]{status}[/] {loss}  "
            f"elapsed {_hms(elapsed)}  eta {_hms(eta) if eta is not None else '?'}"
        )


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
