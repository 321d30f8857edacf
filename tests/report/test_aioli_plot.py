"""plot_trajectory writes one PNG with a panel per Aioli run (and nothing for no rows)."""

from __future__ import annotations

from mixopt.report.aioli_plot import plot_trajectory


def test_plot_trajectory_writes_a_png(tmp_path) -> None:
    rows = [
        {"run_id": run, "round": r, "step": step, "domain": d, "weight": w, "label": label, "seed": 0}
        for run, label in (("f1", "aioli"), ("f2", "aioli_restricted"))
        for r, step, ws in ((0, 0, (0.5, 0.5)), (1, 10, (0.6, 0.4)), (2, 30, (0.7, 0.3)))
        for d, w in zip(("a", "b"), ws)
    ]
    path = plot_trajectory(rows, tmp_path / "plots" / "traj.png", total_steps=50)
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_trajectory([], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
