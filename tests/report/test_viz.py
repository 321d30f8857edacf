"""The report's held-out curves, paired differences, interaction matrices and achieved mixtures,
built from a warehouse filled by hand (no training)."""

import numpy as np
import pytest

from mixopt.report.plots import curves_by_label, heldout_figure, interaction_figure, paired_figure, paired_series
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse, reads

NAMES = ["a", "b", "c"]
T = np.array([[-2.0, -1.0, 0.0], [-1.0, -2.0, 0.0], [0.0, 0.0, -2.0]])  # a and b help each other
STEPS = [10, 20, 30, 40]


def _final(wh, run_id, label, seed, offset, cos=None):
    curve = [[s, s * 100, {d: 4.0 - s / 20 + offset + 0.01 * i for i, d in enumerate(NAMES)}] for s in STEPS]
    r = RunResult(run_id=run_id, status="ok", n_params=10, tokens=4000, val_losses=curve[-1][2], heldout_curve=curve,
                  domain_tokens={"a": 1400, "b": 1300, "c": 1300},
                  grad_cosines=[{"step": 40, "domains": NAMES, "matrix": cos}] if cos is not None else [])
    targets = [float(np.mean(list(p[2].values()))) for p in curve]
    wh.record_run(r, experiment_id="e", role="final", label=label, mixture_id=f"m-{label}", seed=seed,
                  target_loss=targets[-1], code_version="t", weights={"a": 0.34, "b": 0.33, "c": 0.33},
                  heldout_targets=targets)


def fill_warehouse(path) -> Warehouse:
    """Experiment "e": 12 proxies on a planted law, 3 seeds of proposed and natural with held-out curves."""
    wh = Warehouse(path)
    wh.record_experiment("e", "demo", "h", "fp", {}, [DomainShard(n, "x", "y", 1000, 100) for n in NAMES],
                         [1 / 3] * 3)
    rng = np.random.default_rng(0)
    for k, w in enumerate(rng.dirichlet(np.ones(3), size=12)):
        losses = {d: float(3 + np.exp(0.5 + w @ T[i])) for i, d in enumerate(NAMES)}
        wh.record_mixture(f"p{k}", "e", "design", list(w))
        wh.record_run(RunResult(run_id=f"p{k}", status="ok", tokens=100, val_losses=losses), experiment_id="e",
                      role="proxy", label="design", mixture_id=f"p{k}", seed=0,
                      target_loss=float(np.mean(list(losses.values()))), code_version="t", size="target",
                      weights=dict(zip(NAMES, w)))
    cos = [[0.5, 0.7, 0.05], [0.7, 0.5, 0.0], [0.05, 0.0, 0.6]]
    for seed, noise in enumerate([0.0, 0.01, -0.01]):
        _final(wh, f"p-{seed}", "proposed", seed, -0.1 + noise, cos)
        _final(wh, f"n-{seed}", "natural", seed, noise / 2)
    return wh


@pytest.fixture
def wh(tmp_path):
    wh = fill_warehouse(tmp_path / "w.duckdb")
    yield wh
    wh.close()


def test_the_warehouse_keeps_curves_achieved_mixtures_and_cosines(wh):
    curves = reads.heldout_target_curves(wh, "e")
    assert curves.height == 6 * len(STEPS) and set(curves["label"]) == {"proposed", "natural"}
    assert reads.heldout_domain_curves(wh, "e").height == 6 * len(STEPS) * 3
    ach = reads.achieved_mixtures(wh, "e", role="final")
    row = ach.filter((ach["run_id"] == "p-0") & (ach["domain"] == "a")).to_dicts()[0]
    assert row["requested"] == 0.34 and row["tokens"] == 1400 and row["fraction"] == pytest.approx(1400 / 4000)
    assert reads.run_gradient_cosines(wh, "e").height == 3 * 9


def test_report_has_the_sections_and_stores_both_matrices(wh, tmp_path):
    from mixopt.report import build_report

    rep = build_report(wh, "e", tmp_path / "out")
    md = rep.markdown
    assert "## Held-out target during the final runs" in md
    assert "against natural (3 paired seeds): -0.1000 at the end; ahead (95% interval below 0) from 1,000" in md
    assert "## How domains interact" in md and "signs agree on" in md
    assert "- gradient: strongest help b → a (+0.700), a → b (+0.700)" in md, md[md.index("## How"):]
    assert "## Achieved mixtures" in md and "| p-0 | final | proposed | 0 |" in md and "0.340 → 0.350" in md
    names = {p.name for p in rep.plots}
    assert {"final_heldout_curves.png", "final_paired_differences.png", "domain_interactions.png"} <= names
    assert "final_loss_curves.png" not in names  # the training loss is not comparable across mixtures
    inter = reads.interactions(wh, "e")
    assert inter.height == 2 * 9 and set(inter["method"]) == {"swarm", "gradient"}
    swarm = {(r["row_domain"], r["col_domain"]): r["value"]
             for r in inter.filter(inter["method"] == "swarm").to_dicts()}
    assert swarm[("a", "b")] > 0 and swarm[("b", "a")] > 0 and abs(swarm[("c", "a")]) < 0.02
    assert rep.html is not None and rep.html.read_text().count("data:image/png;base64,") == len(rep.plots)


def test_the_figures_have_the_expected_series(wh):
    curves = curves_by_label(reads.heldout_target_curves(wh, "e").to_dicts())
    fig = heldout_figure(curves)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"proposed (3 seeds)", "natural (3 seeds)"}
    assert list(lines["proposed (3 seeds)"].get_xdata()) == [s * 100 for s in STEPS]
    expected = [np.mean([4.0 - s / 20 - 0.1 + n + 0.01 for n in (0.0, 0.01, -0.01)]) for s in STEPS]
    assert np.allclose(lines["proposed (3 seeds)"].get_ydata(), expected)
    assert len(ax.collections) == 2  # one ± sd band per mixture
    t, mean, low, high, n = paired_series(curves, "natural")
    assert n == 3 and np.allclose(mean, -0.1) and np.all(high < 0) and np.all(low < mean)
    pax = paired_figure(curves).axes[0]
    (diff,) = [ln for ln in pax.get_lines() if ln.get_label().startswith("vs ")]
    assert np.allclose(diff.get_ydata(), -0.1) and len(pax.collections) == 1  # the 95% band
    M = {"swarm": np.eye(3), "gradient": np.full((3, 3), 0.5)}
    ifig = interaction_figure(NAMES, M, {})
    heat = [ax.get_images()[0].get_array() for ax in ifig.axes if ax.get_images()]
    assert len(heat) == 2 and np.allclose(heat[0], np.eye(3)) and np.allclose(heat[1], 0.5)
    assert [t.get_text() for t in ifig.axes[0].get_xticklabels()] == NAMES
