"""One sentence per car saying what the charging plan does and why (for the operator's view)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from microfleet.planning.charging import ChargingPlan, FleetSnapshot
    from microfleet.planning.charging_model import Layout

_ON_KW = 0.05  # below this a slot counts as not charging


def _clocks(snapshot: FleetSnapshot) -> list[str]:
    """Each slot boundary's local clock time, with "(+Nd)" past the snapshot's first day."""
    offset_ms = snapshot.utc_offset_s * 1000
    first = datetime.fromtimestamp((snapshot.start_ms + offset_ms) / 1000, tz=UTC).date()
    out = []
    for slot in range(snapshot.n_slots + 1):
        at = datetime.fromtimestamp(
            (snapshot.start_ms + slot * snapshot.slot_s * 1000 + offset_ms) / 1000, tz=UTC
        )
        days = (at.date() - first).days
        out.append(at.strftime("%H:%M") if days == 0 else f"{at.strftime('%H:%M')} (+{days}d)")
    return out


def _spans(clock: list[str], runs: list[tuple[int, int]], most: int = 3) -> str:
    text = ", ".join(f"{clock[a]}–{clock[b]}" for a, b in runs[:most])
    return text + (f" and {len(runs) - most} more" if len(runs) > most else "")


def _row_runs(mask: NDArray[np.bool_]) -> list[list[tuple[int, int]]]:
    """Per row, the contiguous ``[start, end)`` runs of True (all rows at once)."""
    pad = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    pad[:, 1:-1] = mask
    edges = np.diff(pad, axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]
    cut = np.searchsorted(rows, np.arange(mask.shape[0] + 1)).tolist()
    pairs = list(zip(starts.tolist(), ends.tolist(), strict=True))
    return [pairs[cut[i] : cut[i + 1]] for i in range(mask.shape[0])]


def explain(
    snapshot: FleetSnapshot, plan: ChargingPlan, lay: Layout, binding: NDArray[np.bool_]
) -> dict[str, str]:
    """Per car: when it charges, why then, which booking it serves, where the site limit binds."""
    prices = np.asarray(snapshot.tariff.price_per_kwh, dtype=np.float64)
    clock = _clocks(snapshot)
    by_car: dict[str, list[tuple[int, str, float]]] = {}
    for b in plan.bookings:
        by_car.setdefault(b.car_id, []).append((b.start_slot, b.booking_id, b.shortfall_kwh))
    # every car at once: charging slots, the mean price paid and while plugged, site-limit slots
    on = plan.power_kw > _ON_KW
    plugged = lay.plugged
    any_plugged: list[bool] = np.asarray(plugged.any(axis=1)).tolist()
    paid: list[float] = ((on * prices).sum(axis=1) / np.maximum(on.sum(axis=1), 1)).tolist()
    window: list[float] = ((plugged * prices).sum(axis=1) / np.maximum(plugged.sum(axis=1), 1)).tolist()
    negative: list[bool] = np.asarray((on & (prices < 0)).any(axis=1)).tolist()
    site = lay.site_of
    if binding.shape[0]:
        binds = on & (site >= 0) & binding[np.clip(site, 0, None), np.arange(site.shape[1])[None, :]]
    else:
        binds = np.zeros_like(on)
    runs_on, runs_bind = _row_runs(on), _row_runs(binds)
    out: dict[str, str] = {}
    for i, car in enumerate(snapshot.cars):
        bookings = sorted(by_car.get(car.car_id, []))
        parts: list[str] = []
        runs = runs_on[i]
        if not any_plugged[i]:
            parts.append("not plugged in during the horizon")
        elif not runs:
            parts.append(f"no charging needed: holds {plan.energy_kwh[i, 0]:.1f} kWh for what is booked")
        else:
            why = []
            if negative[i]:
                why.append("paid to charge (negative prices)")
            elif paid[i] <= window[i] + 1e-9:
                why.append("cheapest hours while plugged in")
            else:
                why.append("dearer hours: the cheaper ones are too late or full")
            nxt = next((b for b in bookings if b[0] >= runs[0][0]), None)
            if nxt is not None:
                why.append(f"before the {clock[nxt[0]]} booking")
            text = f"charges {_spans(clock, runs)}: " + " ".join(why)
            if runs_bind[i]:
                text += f"; site limit binds {_spans(clock, runs_bind[i])}"
            parts.append(text)
        for slot, booking_id, short in bookings:
            if short > 1e-3:
                parts.append(f"booking {booking_id} at {clock[slot]} short by {short:.1f} kWh")
        out[car.car_id] = "; ".join(parts)
    return out
