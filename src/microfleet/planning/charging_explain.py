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


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` runs of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


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


def explain(
    snapshot: FleetSnapshot, plan: ChargingPlan, lay: Layout, binding: NDArray[np.bool_]
) -> dict[str, str]:
    """Per car: when it charges, why then, which booking it serves, where the site limit binds."""
    prices = np.asarray(snapshot.tariff.price_per_kwh)
    clock = _clocks(snapshot)
    by_car: dict[str, list[tuple[int, str, float]]] = {}
    for b in plan.bookings:
        by_car.setdefault(b.car_id, []).append((b.start_slot, b.booking_id, b.shortfall_kwh))
    out: dict[str, str] = {}
    for i, car in enumerate(snapshot.cars):
        on = plan.power_kw[i] > _ON_KW
        bookings = sorted(by_car.get(car.car_id, []))
        parts: list[str] = []
        if not lay.plugged[i].any():
            parts.append("not plugged in during the horizon")
        elif not on.any():
            parts.append(f"no charging needed: holds {plan.energy_kwh[i, 0]:.1f} kWh for what is booked")
        else:
            runs = _runs(on)
            why = []
            paid = prices[on].mean()
            window = prices[lay.plugged[i]].mean()
            if (prices[on] < 0).any():
                why.append("paid to charge (negative prices)")
            elif paid <= window + 1e-9:
                why.append("cheapest hours while plugged in")
            else:
                why.append("dearer hours: the cheaper ones are too late or full")
            nxt = next((b for b in bookings if b[0] >= runs[0][0]), None)
            if nxt is not None:
                why.append(f"before the {clock[nxt[0]]} booking")
            site = lay.site_of[i]
            bind = on & (site >= 0) & binding[np.clip(site, 0, None), np.arange(len(site))]
            text = f"charges {_spans(clock, runs)}: " + " ".join(why)
            if bind.any():
                text += f"; site limit binds {_spans(clock, _runs(bind))}"
            parts.append(text)
        for slot, booking_id, short in bookings:
            if short > 1e-3:
                parts.append(f"booking {booking_id} at {clock[slot]} short by {short:.1f} kWh")
        out[car.car_id] = "; ".join(parts)
    return out
