"""The charging planner's linear programme: the snapshot laid out on arrays, built in bulk, solved by HiGHS.

Variables per independent group of sites: battery-side kW per plugged car-slot and envelope segment,
battery energy per car at each slot's start, a shortfall per booking, an end-of-horizon shortfall and an
LFP full-charge shortfall per car, and a peak per site. Rows: energy balance per car-slot, each booking's
need at its start, each site-slot's grid power under the site's peak (itself bounded by the site limit),
the end-of-horizon level and the LFP full charge. See ``docs/charging.md`` for the programme written out.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from microfleet.errors import ChargingInputError
from microfleet.planning.charging import FleetSnapshot

# Tie-break per slot index (currency per kWh): among equally cheap slots charge the earlier, which keeps a
# plan stable (same input, same plan) and leaves room for surprises.
_EARLY_PER_SLOT = 1e-5
# Weight per kW of a site-slot's load above each flattening tier (times the largest |price| + 1).
_PEAK_TIE_BREAK = 1e-4
_FLAT_TIERS = (1 / 32, 2 / 32, 3 / 32, 4 / 32, 6 / 32, 8 / 32, 12 / 32, 16 / 32, 24 / 32)


@dataclass(frozen=True, eq=False)
class Layout:
    """The snapshot on arrays: cars x slots (x segments)."""

    car_index: dict[str, int]
    plugged: NDArray[np.bool_]  # (N, T)
    site_of: NDArray[np.int64]  # (N, T) site index, -1 where not plugged
    charger_of: NDArray[np.int64]  # (N, T) charger index, -1 where not plugged
    cap_kw: NDArray[np.float64]  # (N, T) grid kW limit
    slope: NDArray[np.float64]  # (N, T, K) grid kW per battery kW of each envelope segment
    width: NDArray[np.float64]  # (N, T, K) battery kW of each segment
    trip_kwh: NDArray[np.float64]  # (N, T) energy a booking starting in the slot uses
    site_limit: NDArray[np.float64]  # (S,)


@dataclass(frozen=True, eq=False)
class SolveResult:
    """What the solver gives back: grid kW per car per slot, status and gap."""

    power_kw: NDArray[np.float64]
    status: str
    gap: float


@lru_cache(maxsize=4096)
def envelope(points: tuple[tuple[float, float], ...], cap_kw: float) -> tuple[tuple[float, float], ...]:
    """Segments ``(grid kW per battery kW, battery kW width)`` of the lower convex envelope, 0..cap_kw grid.

    ``points`` are ``(grid_kw, efficiency)``; efficiency between points is linear in grid kW and held
    constant beyond the ends. The envelope starts at 0 kW (not charging costs nothing).
    """
    gs = [g for g, _ in points]
    etas = [eta for _, eta in points]
    cand = [(g, e) for g, e in points if g < cap_kw] + [(cap_kw, float(np.interp(cap_kw, gs, etas)))]
    pts = [(0.0, 0.0)] + [(g * e, g) for g, e in cand]  # (battery kW, grid kW)
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (b1, g1), (b2, g2) = hull[-2], hull[-1]
            if (b2 - b1) * (p[1] - g1) - (g2 - g1) * (p[0] - b1) <= 0:  # hull[-1] lies above the chord
                hull.pop()
            else:
                break
        hull.append(p)
    return tuple(((g2 - g1) / (b2 - b1), b2 - b1) for (b1, g1), (b2, g2) in itertools.pairwise(hull))


def layout(snapshot: FleetSnapshot) -> Layout:
    """Lay the snapshot out on (cars x slots) arrays."""
    s = snapshot
    n, t_n = len(s.cars), s.n_slots
    site_idx = {site.site_id: k for k, site in enumerate(s.sites)}
    charger_idx = {c.charger_id: k for k, c in enumerate(s.chargers)}
    plugged = np.zeros((n, t_n), dtype=bool)
    site_of = np.full((n, t_n), -1, dtype=np.int64)
    charger_of = np.full((n, t_n), -1, dtype=np.int64)
    cap = np.zeros((n, t_n))
    segs: list[list[tuple[int, int, int, tuple[tuple[float, float], ...]]]] = [[] for _ in range(n)]
    for i, car in enumerate(s.cars):
        for w in car.windows(t_n):
            a, b = max(0, w.from_slot), min(t_n, w.until_slot)
            if a >= b:
                continue
            ch = s.chargers[charger_idx[w.charger_id]]
            kw = min(ch.max_kw, car.max_dc_kw if ch.dc else car.max_ac_kw)
            plugged[i, a:b] = True
            site_of[i, a:b] = site_idx[ch.site_id]
            charger_of[i, a:b] = charger_idx[w.charger_id]
            cap[i, a:b] = kw
            env = (
                ((1.0 / car.dc_efficiency, kw * car.dc_efficiency),)
                if ch.dc
                else envelope(car.efficiency_points, kw)
            )
            segs[i].append((a, b, 0, env))
    k_n = max((len(e) for rows in segs for *_, e in rows), default=1)
    slope = np.ones((n, t_n, k_n))
    width = np.zeros((n, t_n, k_n))
    for i, rows in enumerate(segs):
        for a, b, _, env in rows:
            for k, (sl, wd) in enumerate(env):
                slope[i, a:b, k] = sl
                width[i, a:b, k] = wd
            if len(env) < k_n:
                slope[i, a:b, len(env) :] = env[-1][0]
    trip = np.zeros((n, t_n))
    index = {c.car_id: i for i, c in enumerate(s.cars)}
    for bk in s.bookings:
        if bk.start_slot < t_n:
            trip[index[bk.car_id], bk.start_slot] += bk.energy_kwh
    return Layout(
        car_index=index,
        plugged=plugged,
        site_of=site_of,
        charger_of=charger_of,
        cap_kw=cap,
        slope=slope,
        width=width,
        trip_kwh=trip,
        site_limit=np.array([site.limit_kw for site in s.sites], dtype=np.float64),
    )


def battery_kw(lay: Layout, grid_kw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Battery-side kW for grid-side kW, filling the envelope's segments in order."""
    seg_grid = lay.slope * lay.width  # grid kW each segment can take
    before = np.cumsum(seg_grid, axis=2) - seg_grid
    fill = np.clip((grid_kw[:, :, None] - before) / lay.slope, 0.0, lay.width)
    return np.asarray(fill.sum(axis=2), dtype=np.float64)


def site_power(lay: Layout, grid_kw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Grid kW per site per slot."""
    n_sites, t_n = len(lay.site_limit), grid_kw.shape[1]
    mask = lay.site_of >= 0
    flat = lay.site_of[mask] * t_n + np.nonzero(mask)[1]
    out = np.bincount(flat, weights=grid_kw[mask], minlength=n_sites * t_n)
    return np.asarray(out.reshape(n_sites, t_n), dtype=np.float64)


def groups(snapshot: FleetSnapshot, lay: Layout) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Independent groups (cars, sites): a car joins every site it is plugged at."""
    n_sites = len(snapshot.sites)
    parent = list(range(n_sites))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    car_sites: list[NDArray[np.int64]] = [np.unique(row[row >= 0]) for row in lay.site_of]
    for sites in car_sites:
        for k in sites[1:]:
            parent[find(int(k))] = find(int(sites[0]))
    members: dict[int, list[int]] = {}
    for i, sites in enumerate(car_sites):
        if len(sites):
            members.setdefault(find(int(sites[0])), []).append(i)
    out = []
    for root in sorted(members):
        site_ids = np.array([k for k in range(n_sites) if find(k) == root], dtype=np.int64)
        out.append((np.array(members[root], dtype=np.int64), site_ids))
    return out


def solve(
    snapshot: FleetSnapshot,
    *,
    time_limit_s: float,
    shortfall_penalty_per_kwh: float | None,
    lay: Layout | None = None,
) -> SolveResult:
    """Solve every independent group; a group that runs out of time gets the fallback (earliest deadline)."""
    lay = layout(snapshot) if lay is None else lay
    power = np.zeros((len(snapshot.cars), snapshot.n_slots))
    deadline = time.perf_counter() + time_limit_s
    statuses: list[str] = []
    gap = 0.0
    for cars, sites in groups(snapshot, lay):
        left = max(0.0, deadline - time.perf_counter())
        sub, status, g = _solve_group(snapshot, lay, cars, sites, left, shortfall_penalty_per_kwh)
        if sub is None:
            from microfleet.planning.charging_baselines import earliest_deadline_first_kw

            sub = earliest_deadline_first_kw(snapshot, lay, None)[cars]
            status, g = "time_limit_fallback", math.inf
        power[cars] = sub
        statuses.append(status)
        gap = max(gap, g)
    worst = next((s for s in ("time_limit_fallback", "time_limit") if s in statuses), "optimal")
    return SolveResult(power_kw=power, status=worst, gap=gap)


@dataclass
class _Rows:
    """Triplets and row bounds of the constraint matrix: arrays appended in bulk, single entries in lists."""

    rows: list[NDArray[np.int64]]
    cols: list[NDArray[np.int64]]
    vals: list[NDArray[np.float64]]
    lo: list[float]
    hi: list[float]
    one_r: list[int]
    one_c: list[int]
    one_v: list[float]

    def add(self, r: object, c: object, v: object) -> None:
        r_ = np.atleast_1d(np.asarray(r, dtype=np.int64))
        self.rows.append(r_)
        self.cols.append(np.atleast_1d(np.asarray(c, dtype=np.int64)))
        self.vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), r_.shape).copy())

    def put(self, r: int, cols: list[int], v: float) -> None:
        self.one_r.extend([r] * len(cols))
        self.one_c.extend(cols)
        self.one_v.extend([v] * len(cols))

    def bound(self, lo: float, hi: float) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        return len(self.lo) - 1

    def triplets(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        rows = np.concatenate([*self.rows, np.asarray(self.one_r, dtype=np.int64)])
        cols = np.concatenate([*self.cols, np.asarray(self.one_c, dtype=np.int64)])
        vals = np.concatenate([*self.vals, np.asarray(self.one_v, dtype=np.float64)])
        return rows, cols, vals


def _solve_group(
    snapshot: FleetSnapshot,
    lay: Layout,
    cars: NDArray[np.int64],
    sites: NDArray[np.int64],
    time_limit_s: float,
    shortfall_penalty_per_kwh: float | None,
) -> tuple[NDArray[np.float64] | None, str, float]:
    """Build and solve one group's programme.

    Energy only rises while plugged in (no discharge), so it is tracked per plug window (its level at the
    window's end), not per slot: the care cap binds at a window's end.
    """
    import highspy

    s, t_n = snapshot, snapshot.n_slots
    n = len(cars)
    dt = s.slot_s / 3600.0
    tariff = s.tariff
    price = np.asarray(tariff.price_per_kwh, dtype=np.float64)
    top = float(np.abs(price).max()) + 1.0
    short_pen = shortfall_penalty_per_kwh if shortfall_penalty_per_kwh is not None else 1000.0 * top
    end_pen, lfp_pen = 10.0 * top, 5.0 * top
    carbon = (
        np.asarray(tariff.carbon_g_per_kwh) * tariff.carbon_price_per_t / 1e6
        if tariff.carbon_g_per_kwh is not None
        else np.zeros(t_n)
    )
    car_objs = [s.cars[i] for i in cars]
    plugged = lay.plugged[cars]
    ci, ct = np.nonzero(plugged)  # plugged cells, row-major
    k_n = lay.slope.shape[2]
    nc = len(ci)
    slope = lay.slope[cars][ci, ct]  # (nc, K)
    width = lay.width[cars][ci, ct]
    # windows: runs of plugged slots per car (a new window also where the charger changes)
    chg = lay.charger_of[cars]
    starts = plugged & ~np.concatenate((np.zeros((n, 1), bool), plugged[:, :-1]), axis=1)
    starts[:, 1:] |= plugged[:, 1:] & plugged[:, :-1] & (chg[:, 1:] != chg[:, :-1])
    win_cell = np.cumsum(starts.ravel())[ci * t_n + ct] - 1  # window index of each cell
    n_win = int(starts.sum())
    wc, wt = np.nonzero(starts)
    w_end = np.zeros(n_win, dtype=np.int64)
    np.maximum.at(w_end, win_cell, ct + 1)
    m = len(sites)
    site_local = np.full(len(s.sites), -1, dtype=np.int64)
    site_local[sites] = np.arange(m)
    local = {s.cars[i].car_id: j for j, i in enumerate(cars)}
    bookings = sorted(
        (b for b in s.bookings if b.car_id in local and b.start_slot < t_n),
        key=lambda b: (local[b.car_id], b.start_slot),
    )
    nb = len(bookings)
    o_p, o_e = 0, nc * k_n
    o_u = o_e + n_win
    o_v = o_u + nb
    o_w = o_v + n
    o_pk = o_w + n
    # the flattening preference: each site-slot's load split into pieces between the tiers (0, 1/32, ...,
    # 24/32, 1 of the limit), piece j costing j x the tie-break weight (convex: filled in order)
    edges = np.array((0.0, *_FLAT_TIERS, 1.0))
    n_piece = len(edges) - 1
    o_pb = o_pk + m
    n_col = o_pb + m * t_n * n_piece
    cost = np.zeros(n_col)
    lo = np.zeros(n_col)
    hi = np.zeros(n_col)
    pr = price[ct][:, None]
    loss_price = np.maximum(pr, 0.0) + tariff.waste_price_per_kwh
    cost[o_p:o_e] = (
        dt * (pr + (slope - 1.0) * loss_price + carbon[ct][:, None] * slope + _EARLY_PER_SLOT * ct[:, None])
    ).ravel()
    hi[o_p:o_e] = width.ravel()
    cap = np.array([c.capacity_kwh for c in car_objs])
    soc = np.array([c.soc_kwh for c in car_objs])
    care = np.array([s.care.lfp_max_frac if c.chemistry == "lfp" else s.care.nmc_max_frac for c in car_objs])
    care_kwh = np.maximum(care * cap, soc)
    hi[o_e:o_u] = care_kwh[wc]
    hi[o_u:o_pk] = np.inf
    cost[o_u:o_v] = short_pen
    cost[o_v:o_w] = end_pen
    due = np.array(
        [c.chemistry == "lfp" and c.full_charge_due and plugged[j].any() for j, c in enumerate(car_objs)]
    )
    cost[o_w:o_pk] = lfp_pen
    hi[o_w:o_pk] = np.where(due, np.inf, 0.0)
    # The demand charge is on each site's peak over the period (free up to the peak so far). Besides, a
    # small convex weight on each site-slot's load above 1/32, 2/32, ... 24/32 of the site limit: of plans of
    # equal cost the flattest (valley hours shared out, not all cars at 23:00), slot by slot, so that one
    # busy slot (a top-up at the horizon's end) does not make concentrating elsewhere free.
    cost[o_pk:o_pb] = tariff.peak_charge_per_kw
    hi[o_pk:o_pb] = lay.site_limit[sites]
    lo[o_pk:o_pb] = np.minimum([s.sites[k].peak_so_far_kw for k in sites], hi[o_pk:o_pb])
    # pieces laid out (piece, site, slot)
    cost[o_pb:] = np.repeat(_PEAK_TIE_BREAK * top * np.arange(n_piece), m * t_n)
    hi[o_pb:] = (np.diff(edges)[:, None] * lay.site_limit[sites][None, :]).repeat(t_n, axis=1).ravel()

    rr = _Rows([], [], [], [], [], [], [], [])
    win_row = np.zeros(n_win, dtype=np.int64)
    # per car, walk windows and bookings in time order: E_w = E_prev - trips + shortfalls + charged in w
    # (plain Python lists and appends here: this loop runs once per car and window, 10^5 times at scale)
    # a window's cells are consecutive (row-major), and so are a car's windows
    win_first = np.searchsorted(win_cell, np.arange(n_win + 1)).tolist()
    car_first = np.searchsorted(wc, np.arange(n + 1)).tolist()
    by_car: dict[int, list[tuple[int, int]]] = {}
    for k, b in enumerate(bookings):
        by_car.setdefault(local[b.car_id], []).append((b.start_slot, k))
    need = [b.need_kwh for b in bookings]
    use = [b.energy_kwh for b in bookings]
    wt_l, w_end_l, soc_l, cap_l = wt.tolist(), w_end.tolist(), soc.tolist(), cap.tolist()
    care_l, due_l = care_kwh.tolist(), due.tolist()
    row_lo, row_hi, one_r, one_c, one_v = rr.lo, rr.hi, rr.one_r, rr.one_c, rr.one_v
    end_frac = s.care.end_min_frac
    for j in range(n):
        prev = -1  # column offset of the last window's end energy (-1: the snapshot's soc)
        gap_u: list[int] = []
        gap_trip = 0.0
        car_b = by_car.get(j, [])
        events = sorted(
            [(wt_l[w], 1, w) for w in range(car_first[j], car_first[j + 1])] + [(t, 0, k) for t, k in car_b]
        )
        for _, kind, idx in events:
            const = soc_l[j] if prev < 0 else 0.0
            r = len(row_lo)
            if kind == 0:  # booking: energy at its start + its shortfall >= need
                row_lo.append(need[idx] + gap_trip - const)
                row_hi.append(math.inf)
                gap_u.append(o_u + idx)
                cols = gap_u if prev < 0 else [*gap_u, o_e + prev]
                one_r.extend([r] * len(cols))
                one_c.extend(cols)
                one_v.extend([1.0] * len(cols))
                gap_trip += use[idx]
                continue
            w = idx
            row_lo.append(const - gap_trip)
            row_hi.append(const - gap_trip)
            win_row[w] = r
            minus = gap_u if prev < 0 else [*gap_u, o_e + prev]
            one_r.extend([r] * (len(minus) + 1))
            one_c.append(o_e + w)
            one_c.extend(minus)
            one_v.append(1.0)
            one_v.extend([-1.0] * len(minus))
            nxt = next((k for t, k in car_b if t >= w_end_l[w]), -1)
            if nxt >= 0 and need[nxt] > care_l[j]:
                # NMC above its care cap only in the last slots before the booking that needs it (no dwell)
                hi[o_e + w] = cap_l[j]
                per_slot = car_objs[j].max_ac_kw * 0.9 * dt
                late = w_end_l[w] - (math.ceil((need[nxt] - care_l[j]) / per_slot) + 1)
                cells = np.arange(win_first[w], win_first[w + 1])
                late_cells = cells[ct[cells] >= late]
                r = rr.bound(-math.inf, care_l[j])
                rr.put(r, [o_e + w], 1.0)
                rr.add(
                    np.full(len(late_cells) * k_n, r),
                    o_p + (late_cells[:, None] * k_n + np.arange(k_n)).ravel(),
                    -dt,
                )
            prev, gap_u, gap_trip = w, [], 0.0
        if prev < 0:
            continue
        # end of horizon: E_last - trips after + shortfalls after + v >= end_min_frac * cap
        r = rr.bound(end_frac * cap_l[j] + gap_trip, math.inf)
        rr.put(r, [o_e + prev, o_v + j, *gap_u], 1.0)
        if due_l[j]:
            r = rr.bound(cap_l[j], math.inf)
            rr.put(r, [o_e + prev, o_w + j], 1.0)
    # each window's balance row takes its cells' charging: - dt * sum_k p
    rr.add(np.repeat(win_row[win_cell], k_n), o_p + np.arange(nc * k_n), -dt)
    # site, slot: the load (sum of grid kW at the site) is the sum of its tier pieces; the pieces' sum is at
    # most the period's peak (a column bounded by the site limit, from the peak so far)
    row0 = len(rr.lo)
    site_cell = site_local[lay.site_of[cars][ci, ct]]
    rr.add(np.repeat(row0 + site_cell * t_n + ct, k_n), o_p + np.arange(nc * k_n), slope.ravel())
    piece_cols = o_pb + np.arange(m * t_n * n_piece)
    piece_site_slot = np.tile(np.arange(m * t_n), n_piece)
    rr.add(row0 + piece_site_slot, piece_cols, -1.0)
    rr.lo += [0.0] * (m * t_n)
    rr.hi += [0.0] * (m * t_n)
    row1 = len(rr.lo)
    rr.add(row1 + piece_site_slot, piece_cols, 1.0)
    rr.add(row1 + np.arange(m * t_n), o_pk + np.repeat(np.arange(m), t_n), -1.0)
    rr.lo += [-math.inf] * (m * t_n)
    rr.hi += [0.0] * (m * t_n)
    n_row = len(rr.lo)

    r_idx, c_idx, v = rr.triplets()
    a = sp.csc_matrix((v, (r_idx, c_idx)), shape=(n_row, n_col))
    a.sum_duplicates()
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("random_seed", 0)
    # Presolve finds little to remove in this programme and costs ~30 % of the time (measured on 100-200
    # car depots, bench/charging.py); dual simplex from the slack basis is quicker.
    h.setOptionValue("presolve", "off")
    # the arrays in one call (column-wise, minimise, no integers): ~7x quicker than filling a HighsLp's fields
    passed = h.passModel(
        n_col,
        n_row,
        a.nnz,
        1,  # MatrixFormat.kColwise
        1,  # ObjSense.kMinimize
        0.0,
        cost,
        lo,
        hi,
        np.asarray(rr.lo, dtype=np.float64),
        np.asarray(rr.hi, dtype=np.float64),
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data,
        np.zeros(n_col, dtype=np.int32),
    )
    if passed != highspy.HighsStatus.kOk:
        # passModel refuses only non-finite or crossed bounds, which the snapshot checks should have caught
        raise ChargingInputError(f"HiGHS refused the charging programme ({passed}): a bound is unusable")
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kOptimal:
        name, gap = "optimal", 0.0
    elif info.primal_solution_status == 2:  # kSolutionStatusFeasible
        name = "time_limit"
        primal, dual = info.objective_function_value, info.mip_dual_bound
        gap = abs(primal - dual) / max(1.0, abs(primal)) if math.isfinite(dual) else math.inf
    else:
        return None, "time_limit", math.inf
    x = np.asarray(h.getSolution().col_value)
    p = x[o_p:o_e].reshape(nc, k_n)
    grid = np.zeros((n, t_n))
    grid[ci, ct] = (p * slope).sum(axis=1)
    return np.clip(grid, 0.0, lay.cap_kw[cars]), name, gap
