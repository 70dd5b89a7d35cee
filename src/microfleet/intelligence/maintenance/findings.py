"""What a detector says about a car: a verdict, a reason a mechanic understands, and the data behind it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt


class Verdict(enum.StrEnum):
    """A detector's answer: fine, suspected fault, still learning the car, or no signal to judge by."""

    OK = "ok"
    SUSPECTED = "suspected"
    LEARNING = "learning"
    NO_SIGNAL = "no_signal"


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """One detector's answer for one car (and one part: a wheel, a code), with its evidence."""

    detector: str
    verdict: Verdict
    reason: str
    condition: str = ""  # the alert's de-duplication condition, e.g. 'tyre:fl'
    severity: str = "info"  # info, warning, critical (the alert severities)
    action: str = ""
    score: float = 0.0  # larger = more anomalous (for ranking and AUROC); 0 when not judged
    evidence: Mapping[str, float | str] = field(default_factory=dict)
    learning_days_needed: float | None = None


def learning(detector: str, days_have: float, days_need: float, what: str) -> DetectorResult:
    """'learning: N more days needed' for a car with too little history."""
    more = max(days_need - days_have, 0.0)
    return DetectorResult(
        detector, Verdict.LEARNING, f"learning: {int(np.ceil(more))} more days needed ({what})",
        learning_days_needed=float(np.ceil(more)),
        evidence={"history_days": round(days_have, 2), "needed_days": days_need},
    )  # fmt: skip


def no_signal(detector: str, what: str) -> DetectorResult:
    """A detector whose input the car does not send says so instead of 'all fine'."""
    return DetectorResult(detector, Verdict.NO_SIGNAL, f"no {detector} detector: the car sends no {what}")


# A false-alarm mark raises that detector's thresholds for the car by this factor, up to MAX_FACTOR: two
# marks make a rule 1.56x less sensitive. Assumed; the bench's false-alarm row measures the defaults.
FALSE_ALARM_STEP: Final = 1.25
MAX_FACTOR: Final = 2.0


def threshold_factor(false_alarms: int) -> float:
    """How much an operator's false-alarm marks raise a detector's thresholds (1 = as shipped)."""
    return float(min(FALSE_ALARM_STEP ** max(false_alarms, 0), MAX_FACTOR))


def first_true(flags: npt.NDArray[np.bool_]) -> int:
    """Index of the first True, or -1."""
    hit = np.flatnonzero(flags)
    return int(hit[0]) if hit.size else -1
