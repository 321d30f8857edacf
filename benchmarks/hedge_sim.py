"""Which hedge kappa, which level regressor, and does the scale gate help? A simulation with planted optima.

    python benchmarks/hedge_sim.py                       # the default size (about 10 min nice'd on 2 cores)
    python benchmarks/hedge_sim.py --replicates 40 --B 50 --jobs 16 --regressors linear lightgbm mixing_law gp auto
    python benchmarks/hedge_sim.py --boot-timing --B 100 --regressors gp lightgbm --out /tmp/boot.json

Each replicate draws a true loss of the scale-aware law's own form at the demo's design size:

    T(w, z) = 4 - 0.3 z - alpha * sqrt(w) . (sqrt(u) + 0.8 z sqrt(v)),   z = log10(compute / proxy compute),

5 domains, a ladder z in {-0.602, -0.301, 0} (tokens 0.25, 0.5, 1 of the proxies') and the final run at
z = 0.65 (the demo's final compute). At z = 0: 20 design mixtures (RegMix's Dirichlet design around the
prior) and 3 anchors (natural = the prior, stratified = uniform, target_only = 0.6 on domain 0) x 3 seeds;
at each cheaper rung the first 4 design mixtures and the anchors, one seed. Every run gets N(0, 0.03^2)
noise.

* planted: u, v ~ Dirichlet(1); alpha is set so that the final-scale optimum (w ~ (sqrt(u) + 0.65 * 0.8
  sqrt(v))^2) is U(0.03, 0.07) nats better than the best anchor; (u, v) are redrawn until the 20 design
  mixtures' true losses at the proxy scale span at most 0.5 nats (an anchor close to the optimum would
  otherwise blow alpha, and the swarm's spread, up to several nats);
* null: u = v = the natural anchor (it is optimal at every scale); alpha makes the other anchors 0.05
  nats worse on average.

For every level regressor the script fits the scale-aware law on all rows, searches its final-scale
optimum (the top 100 of 50,000 RegMix candidates, found with `CandidatePool`), refits it on B bootstrap
resamples of the mixtures, and hedges from the best-predicted anchor with kappa in {0.5, 1, 2} (sd =
sqrt(bootstrap var + transfer var), the transfer variance from the gate's leave-largest-scale-out
residuals) and, for comparison, kappa = 1 with the bootstrap variance only (the hedge before this change).
It also runs the gate (law vs the regressor alone) and records the gated raw optimum. Scored by the TRUE
final-scale loss: gain = loss of the truly best anchor - loss of the proposal (> 0: better), and regret =
loss of the proposal - the true optimum. Results (means, standard errors, replicate counts) go to
`benchmarks/hedge_sim.json` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

K = 5
PRIOR = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
ANCHORS = {"natural": PRIOR, "stratified": np.full(K, 0.2), "target_only": np.array([0.6, 0.1, 0.1, 0.1, 0.1])}
RUNGS = (-0.602, -0.301, 0.0)
S_FINAL = 0.65
NOISE = 0.03
SLOPE = 0.8
KAPPAS = (0.5, 1.0, 2.0)
N_DESIGN, N_RUNG_MIX, ANCHOR_SEEDS = 20, 4, 3
MAX_RANGE = 0.5


class Truth:
    """T(w, z) of the module docstring."""

    def __init__(self, case: str, rng: np.random.Generator, design: np.ndarray | None = None) -> None:
        for _ in range(200):  # redraw until the design's losses at the proxy scale span <= MAX_RANGE nats
            self._draw(case, rng)
            if design is None or case != "planted" or np.ptp(self(design, 0.0)) <= MAX_RANGE:
                break

    def _draw(self, case: str, rng: np.random.Generator) -> None:
        if case == "planted":
            self.u, self.v = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K))
        else:
            self.u = self.v = PRIOR.copy()
        self.alpha = 1.0
        a = self._a(S_FINAL)
        self.opt_w = a ** 2 / np.sum(a ** 2)
        anchors = np.array(list(ANCHORS.values()))
        gaps = self(anchors, S_FINAL) - self(self.opt_w[None], S_FINAL)[0]
        target = rng.uniform(0.03, 0.07) if case == "planted" else 0.05
        self.alpha = target / (gaps.min() if case == "planted" else np.sort(gaps)[1:].mean())
        self.best = float(self(self.opt_w[None], S_FINAL)[0])

    def _a(self, z: float) -> np.ndarray:
        return np.sqrt(self.u) + SLOPE * z * np.sqrt(self.v)

    def __call__(self, W: np.ndarray, z: float | np.ndarray) -> np.ndarray:
        W = np.atleast_2d(np.asarray(W, float))
        z = np.broadcast_to(np.asarray(z, float), (len(W),))
        mix = np.einsum("ij,ij->i", np.sqrt(np.clip(W, 0, None)), np.sqrt(self.u)[None] + SLOPE * z[:, None]
                        * np.sqrt(self.v)[None])
        return 4.0 - 0.3 * z - self.alpha * mix


def swarm(truth: Truth, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(W, s, y, groups) of one simulated swarm with its ladder."""
    from mixopt.mixtures.design import sample_design
    from mixopt.mixtures.scaling import mixture_key

    rng = np.random.default_rng(seed + 1000)
    design = sample_design(PRIOR, N_DESIGN, None, seed=seed)
    anchors = list(ANCHORS.values())
    rows = [(w, 0.0) for w in design] + [(w, 0.0) for w in anchors for _ in range(ANCHOR_SEEDS)]
    rows += [(w, z) for z in RUNGS[:-1] for w in [*design[:N_RUNG_MIX], *anchors]]
    W = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    y = truth(W, s) + NOISE * rng.standard_normal(len(s))
    return W, s, y, [mixture_key(w) for w in W]


def _factory(name: str, seed: int, W: np.ndarray, y: np.ndarray):
    """The level regressor as production builds it: `auto` is frozen to its CV choice on the top rows;
    `ridge_phi` is the law's default level (not a `make_regressor` name)."""
    from mixopt.mixtures.choose import FixedEnsemble
    from mixopt.mixtures.regressors import make_regressor

    if name == "ridge_phi":  # the law's own default level: ridge on [w, sqrt(w)], the truth's form
        from mixopt.mixtures.scaling import _Ridge

        return _Ridge
    if name == "auto":
        weights = dict(make_regressor("auto", seed).fit(W, y).weights_)
        return lambda: FixedEnsemble(weights, seed)
    return lambda: make_regressor(name, seed)


def _hedges(W, s, y, g, base, anchor_w, raw, s_at, B, seed, tau2, label) -> tuple[dict, dict]:
    """Bootstrap the model on (W, s, y, g), hedge from its best-predicted anchor towards `raw`."""
    from mixopt.mixtures.scaling import ScaleAwareLaw, bootstrap_laws, hedge

    law = ScaleAwareLaw(base).fit(W, s, y, g)
    laws = bootstrap_laws(W, s, y, g, B=B, seed=seed, base=base)
    pred = {n: float(law.predict_at(w[None], s_at)[0]) for n, w in anchor_w.items()}
    start = anchor_w[min(pred, key=pred.get)]
    props, lams = {f"{label} best anchor": start}, {}
    for kappa, t2 in [(k, tau2) for k in KAPPAS] + [(1.0, 0.0)]:
        key = f"{label} hedge kappa={kappa:g}" + (", boot sd only" if t2 == 0.0 and kappa == 1.0 else "")
        h = hedge(start, raw, laws, s_at, kappa=kappa, transfer_tau2=t2)
        props[key], lams[key] = h.weights, h.lam
    return props, lams


def one(args: tuple[str, int, tuple[str, ...], int]) -> list[dict]:
    """Every regressor on one replicate of one case: the law always (`law ...`) and the production
    pipeline, where the gate chooses the law or the single-scale regressor (`gated ...`)."""
    from mixopt.mixtures.bootstrap import CandidatePool
    from mixopt.mixtures.design import sample_design
    from mixopt.mixtures.scaling import ScaleAwareLaw, scale_gate, transfer_tau2

    case, seed, regressors, B = args
    truth = Truth(case, np.random.default_rng(seed), sample_design(PRIOR, N_DESIGN, None, seed=seed))
    W, s, y, g = swarm(truth, seed)
    g = np.asarray(g)
    top = s == 0.0
    anchor_w = {n: np.asarray(w, float) for n, w in ANCHORS.items()}
    best_anchor = min(float(truth(w[None], S_FINAL)[0]) for w in anchor_w.values())
    pool = CandidatePool(PRIOR, None, 50_000, 100, seed, n_screen=2_000)
    out = []
    for name in regressors:
        t0 = time.perf_counter()
        base = _factory(name, seed, W[top], y[top])
        gate = scale_gate(W, s, y, g, base, name=name)
        raw = pool.propose(ScaleAwareLaw(base).fit(W, s, y, g).at(S_FINAL))
        single = pool.propose(ScaleAwareLaw(base).fit(W[top], s[top], y[top], g[top]).at(0.0))
        props = {"law raw (kappa=0)": raw, "single-scale raw": single, "gated raw": raw if gate.use_law else single}
        p, lams = _hedges(W, s, y, g, base, anchor_w, raw, S_FINAL, B, seed, transfer_tau2(gate, "law"), "law")
        props.update(p)
        if gate.use_law:
            p = {k.replace("law ", "gated ", 1): v for k, v in p.items()}
            lg = {k.replace("law ", "gated ", 1): v for k, v in lams.items()}
        else:
            p, lg = _hedges(W[top], s[top], y[top], g[top], base, anchor_w, single, 0.0, B, seed,
                            transfer_tau2(gate, "single"), "gated")
        props.update(p)
        lams.update(lg)
        loss = {k: float(truth(w[None], S_FINAL)[0]) for k, w in props.items()}
        out.append({"case": case, "seed": seed, "regressor": name, "B": B, "use_law": bool(gate.use_law),
                    "tau2": transfer_tau2(gate), "gain": {k: best_anchor - v for k, v in loss.items()},
                    "regret": {k: v - truth.best for k, v in loss.items()}, "lam": lams,
                    "seconds": time.perf_counter() - t0})
    return out


def summarise(rows: list[dict]) -> dict:
    """Mean and standard error per case, regressor and strategy."""
    out: dict = {}
    for r in rows:
        d = out.setdefault(r["case"], {}).setdefault(r["regressor"], {"n": 0, "gain": {}, "regret": {}, "lam0": {},
                                                                      "use_law": [], "seconds": []})
        d["n"] += 1
        d["use_law"].append(r["use_law"])
        d["seconds"].append(r["seconds"])
        for key in ("gain", "regret"):
            for k, v in r[key].items():
                d[key].setdefault(k, []).append(v)
        for k, v in r["lam"].items():
            d["lam0"].setdefault(k, []).append(float(v == 0.0))
    for case in out.values():
        for d in case.values():
            for key in ("gain", "regret", "lam0"):
                d[key] = {k: [float(np.mean(v)), float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0]
                          for k, v in d[key].items()}
            d["use_law"] = float(np.mean(d["use_law"]))
            d["seconds"] = float(np.mean(d["seconds"]))
    return out


def markdown(summary: dict) -> str:
    lines = []
    for case, regs in summary.items():
        lines.append(f"\n### {case}\n")
        names = list(regs)
        strategies = list(next(iter(regs.values()))["gain"])
        lines.append("| strategy | " + " | ".join(f"{n} (n={regs[n]['n']})" for n in names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for k in strategies:
            cells = []
            for n in names:
                m, se = regs[n]["gain"][k]
                lam0 = regs[n]["lam0"].get(k)
                cells.append(f"{m:+.4f} ± {se:.4f}" + (f" (anchor {100 * lam0[0]:.0f}%)" if lam0 else ""))
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("| gate picks the law | " + " | ".join(f"{100 * regs[n]['use_law']:.0f}%" for n in names) + " |")
        lines.append("| seconds per fit step | " + " | ".join(f"{regs[n]['seconds']:.1f}" for n in names) + " |")
    return "\n".join(lines)


def boot_timing(regressors: list[str], B: int, seed: int = 0) -> list[dict]:
    """The fit step's bootstrap on one planted swarm: seconds for B refits and the stability number,
    with each bootstrap optimum searched three ways: a fresh 2,000-candidate RegMix draw (before),
    the main optimum's 50,000 candidates through `CandidatePool` (after), and all 50,000 scored."""
    from mixopt.mixtures.choose import choose_at_scale
    from mixopt.mixtures.design import sample_design

    truth = Truth("planted", np.random.default_rng(seed), sample_design(PRIOR, N_DESIGN, None, seed=seed))
    W, s, y, g = swarm(truth, seed)
    out = []
    for name in regressors:
        base = _factory(name, seed, W[s == 0.0], y[s == 0.0])
        for label, kw in (("sample 2k", {"boot_search": "sample", "boot_samples": 2_000}),
                          ("pool 50k (screen 2k)", {"boot_search": "pool", "boot_samples": 2_000}),
                          ("sample 50k", {"boot_search": "sample", "boot_samples": 50_000})):
            if label == "sample 50k" and name == "lightgbm" and B > 20:
                continue  # 1.5-3 s per 50k LightGBM prediction: too slow for the shared machine
            t0 = time.perf_counter()
            c = choose_at_scale(W, s, y, g, base, PRIOR, np.ones(K), ANCHORS, S_FINAL, n_samples=50_000, top_k=100,
                                seed=seed, kappa=0.0, B=B, **kw)
            out.append({"regressor": name, "search": label, "B": len(c.boot.proposals), "seconds": c.boot.seconds,
                        "stability_tv": c.boot.stability, "scored": c.boot_scored,
                        "total_seconds": time.perf_counter() - t0})
            print(out[-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=12, help="planted replicates (null: half as many)")
    ap.add_argument("--B", type=int, default=30, help="bootstrap refits per hedge")
    ap.add_argument("--regressors", nargs="+", default=["ridge_phi", "linear", "lightgbm", "mixing_law", "gp"])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "hedge_sim.json"))
    ap.add_argument("--boot-timing", action="store_true", help="only time the fit step's bootstrap (see boot_timing)")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.boot_timing:
        rows = boot_timing(a.regressors, a.B)
        Path(a.out).write_text(json.dumps({"args": vars(a), "boot_timing": rows}, indent=1))
        return
    tasks = [("planted", i, tuple(a.regressors), a.B) for i in range(a.replicates)]
    tasks += [("null", 10_000 + i, tuple(a.regressors), a.B) for i in range(max(2, a.replicates // 2))]
    t0 = time.perf_counter()
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            rows = [r for chunk in ex.map(one, tasks) for r in chunk]
    else:
        rows = [r for t in tasks for r in one(t)]
    summary = summarise(rows)
    Path(a.out).write_text(json.dumps({"args": vars(a), "seconds": time.perf_counter() - t0, "summary": summary,
                                       "rows": rows}, indent=1))
    print(f"{len(tasks)} replicates in {time.perf_counter() - t0:.0f} s; gain over the truly best anchor "
          "(nats, mean ± se; > 0 better), share of proposals that are the anchor:")
    print(markdown(summary))


if __name__ == "__main__":
    main()
