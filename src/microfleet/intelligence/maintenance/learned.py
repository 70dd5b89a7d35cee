"""The learned detector beside the rules: an isolation forest on each car's residuals from its own usual.

Features per car and 6 h bucket are the rules' residuals (a wheel's drop under the others, the 12 V rest
drop, the cell spread's growth) and their slopes, so the forest learns what ordinary wobble looks like across
a fleet and scores how unusual a car is now, with no labels (Liu, Ting & Zhou 2008, "Isolation Forest",
ICDM). scikit-learn is imported only when a forest is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from microfleet.errors import ConfigurationError
from microfleet.intelligence.maintenance import aux_battery, cells, tyres
from microfleet.intelligence.maintenance.series import F64

FEATURES: Final = (
    "tyre_drop_kpa", "tyre_slope_kpa_day", "aux_drop_v", "aux_slope_v_day", "cell_growth_mv",
    "cell_slope_mv_day",
)  # fmt: skip


def residual_features(
    tyre: tyres.TyreTrace | None, aux: aux_battery.AuxTrace | None, cell: cells.CellTrace | None, n: int
) -> F64:
    """(buckets, 6) residual features; 0 where a signal is absent (absent is not unusual)."""
    out = np.zeros((n, len(FEATURES)))
    if tyre is not None:
        with np.errstate(all="ignore"):
            drop = np.where(np.isfinite(tyre.drop_kpa), tyre.drop_kpa, -np.inf)
            out[:, 0] = np.nan_to_num(np.nanmax(drop, 1),
                                      nan=0.0, neginf=0.0)  # fmt: skip
            out[:, 1] = np.nan_to_num(np.nanmin(np.where(np.isfinite(tyre.slope_kpa_day), tyre.slope_kpa_day,
                                                         np.inf), 1), nan=0.0, posinf=0.0)  # fmt: skip
    if aux is not None:
        out[:, 2] = np.nan_to_num(aux.drop_v)
        out[:, 3] = np.nan_to_num(aux.slope_v_day)
    if cell is not None:
        out[:, 4] = np.nan_to_num(cell.growth_mv)
        out[:, 5] = np.nan_to_num(cell.slope_mv_day)
    return out


@dataclass
class ResidualForest:
    """Isolation forest over residual features (scikit-learn conventions: ``fit`` returns self)."""

    n_estimators: int = 200
    seed: int = 0
    _model: Any = field(default=None, repr=False)
    _scale: F64 = field(default_factory=lambda: np.ones(len(FEATURES)), repr=False)

    def fit(self, x: F64) -> ResidualForest:
        """Fit on rows of fleet residuals (mostly healthy cars; no labels)."""
        from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]  # heavy: on use

        self._scale = np.maximum(np.median(np.abs(x - np.median(x, axis=0)), axis=0) * 1.4826, 1e-6)
        self._model = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed).fit(
            x / self._scale
        )
        return self

    def score(self, x: F64) -> F64:
        """Anomaly score per row: larger = more unusual (the negated ``score_samples``)."""
        if self._model is None:
            raise ConfigurationError("the isolation forest is not fitted: call fit first")
        return np.asarray(-self._model.score_samples(x / self._scale), dtype=np.float64)
