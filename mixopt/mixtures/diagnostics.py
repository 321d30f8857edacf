"""Statistics behind the report's trust checks: scale transfer, the seed noise floor, their warnings.

* **Scale transfer** — proxies of two sizes trained on the same mixtures: the Spearman rank
  correlation of their target losses (:func:`rank_transfer`).  A low correlation means the ranking
  the small proxies give does not carry over to the larger size.
* **Noise floor** — a few mixtures trained with several seeds: the pooled seed-to-seed standard
  deviation of the target (:func:`noise_floor`), ``sqrt(sum_g sum_i (y_gi - mean_g)^2 / sum_g (n_g - 1))``.
  No regressor can predict a single seed's loss more precisely than that, so a cross-validated
  RMSE below it means the CV score is not trustworthy (it is matching noise, or luck).
* **Cost** — a training run's compute ``FLOPs = 6 x params x tokens`` (:func:`train_flops`).

Pure numpy / scipy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

MIN_TRANSFER_MIXTURES = 3  # a rank correlation over fewer mixtures says nothing


@dataclass
class TransferCheck:
    """Spearman rho of the target between two sizes over ``n`` mixtures (rho None when n < 3 or
    either size's losses are constant)."""

    rho: float | None
    n: int


@dataclass
class NoiseFloor:
    """Pooled seed-to-seed sd of the target (None without a mixture trained with >= 2 seeds)."""

    sd: float | None
    n_mixtures: int
    n_runs: int
    dof: int


def train_flops(n_params: float, tokens: float) -> float:
    """Training compute of one run: 6 x parameters x tokens."""
    if n_params <= 0 or tokens <= 0:
        raise ValueError(f"n_params and tokens must be positive, got {n_params} and {tokens}")
    return 6.0 * float(n_params) * float(tokens)


def rank_transfer(small: Mapping[str, float], large: Mapping[str, float]) -> TransferCheck:
    """Spearman rank correlation of the losses of the mixtures present (and finite) in both maps
    (mixture id -> target loss at one size)."""
    keys = sorted(k for k in set(small) & set(large)
                  if np.isfinite(small[k]) and np.isfinite(large[k]))
    a = np.array([small[k] for k in keys], dtype=float)
    b = np.array([large[k] for k in keys], dtype=float)
    if len(keys) < MIN_TRANSFER_MIXTURES or np.ptp(a) == 0 or np.ptp(b) == 0:
        return TransferCheck(None, len(keys))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(a, b)[0])
    return TransferCheck(rho if np.isfinite(rho) else None, len(keys))


def noise_floor(groups: Sequence[Sequence[float]]) -> NoiseFloor:
    """Pooled within-group standard deviation of ``groups`` (one group per mixture: its target
    losses at different seeds). Groups with fewer than 2 finite values are ignored."""
    ss, dof, n_mix, n_runs = 0.0, 0, 0, 0
    for g in groups:
        v = np.asarray([x for x in g if x is not None and np.isfinite(x)], dtype=float)
        if len(v) < 2:
            continue
        ss += float(np.sum((v - v.mean()) ** 2))
        dof += len(v) - 1
        n_mix += 1
        n_runs += len(v)
    return NoiseFloor(float(np.sqrt(ss / dof)) if dof else None, n_mix, n_runs, dof)


def check_warnings(regressor: str | None, cv_rmse: float | None, noise: NoiseFloor,
                   transfer: TransferCheck | None, min_rho: float) -> list[str]:
    """The report's warnings, each naming its numbers: the chosen regressor's CV RMSE below the
    seed noise floor, and a rank correlation between the two sizes below ``min_rho``."""
    out = []
    if regressor is not None and cv_rmse is not None and np.isfinite(cv_rmse) and noise.sd is not None \
            and cv_rmse < noise.sd:
        out.append(
            f"the {regressor} fit's CV RMSE ({cv_rmse:.4f}) is below the seed-to-seed noise floor "
            f"({noise.sd:.4f}, pooled sd over {noise.n_mixtures} mixtures, {noise.n_runs} runs): "
            "it is fitting seed noise, and its CV score is not trustworthy")
    if transfer is not None and transfer.rho is not None and transfer.rho < min_rho:
        out.append(
            f"the ranks do not transfer between the proxy sizes: Spearman rho {transfer.rho:.3f} over "
            f"{transfer.n} mixtures trained at both, below {min_rho:.2f}; mixtures the small proxies "
            "rank best may not be best at the target size")
    return out
