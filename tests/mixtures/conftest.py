"""Shared data for the regressor and cross-validation tests."""

from __future__ import annotations

import numpy as np
import pytest


def smooth_loss(P: np.ndarray) -> np.ndarray:
    """A smooth, non-linear loss over 4 domains (sqrt-shaped, as small proxies are)."""
    P = np.clip(P, 0.0, None)
    return 3.0 + np.exp(0.3 - 1.5 * np.sqrt(P[:, 0]) - 0.6 * P[:, 1] + 0.4 * np.sqrt(P[:, 2] * P[:, 3]))


@pytest.fixture
def smooth_data() -> tuple[np.ndarray, np.ndarray]:
    """60 flat-Dirichlet mixtures over 4 domains and a slightly noisy smooth loss."""
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), size=60)
    y = smooth_loss(X) + rng.normal(0.0, 0.005, size=60)
    return X, y
