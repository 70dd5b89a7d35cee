"""Derived history in the store: state spans, drives, charges, parked drain, excluded records.

Every derived row is keyed ``(vehicle_id, start_ts_ms)``; the deriver replaces all rows from a resume
point on in one transaction, so a recompute never leaves a row counted twice. :class:`HistoryStore`
implements :class:`microfleet.services.derivation.HistoryPort` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, fields
from itertools import pairwise
from types import UnionType
from typing import Any, Final, Union, cast, get_args, get_origin, get_type_hints

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.types import TypeEngine

from microfleet.domain.charges import ChargeSession
from microfleet.domain.derivation import (
    CALIBRATION_SESSIONS,
    DerivedHistory,
    ResumePoint,
    StateSpan,
    VehicleContext,
)
from microfleet.domain.drives import Drive, GpsFix, QuarantinedRecord
from microfleet.domain.summaries import ParkedDrain, flag_drain
from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.vehicle_state import (
    BOOL_COLUMNS,
    FLOAT_COLUMNS,
    GEAR_CODES,
    TelemetryColumns,
    VehicleState,
    VehicleStatus,
)
from microfleet.errors import ConfigurationError
from microfleet.store.places_store import places_of_vehicle
from microfleet.store.schema import metadata, telemetry, vehicle_latest, vehicles
from microfleet.store.tariffs_store import tariffs_named


def _key() -> list[Column[Any]]:
    return [
        Column("vehicle_id", String(64), primary_key=True),
        Column("start_ts_ms", BigInteger, primary_key=True),
    ]


# A derived dataclass's field type -> its column's type ("float | None" maps like "float").
_COLUMN_TYPES: Final[dict[type, type[TypeEngine[Any]]]] = {
    float: Float,
    int: BigInteger,
    str: Text,
    bool: Boolean,
}


def _columns_of(cls: type, skip: Sequence[str]) -> list[Column[Any]]:
    """One nullable column per dataclass field, typed by its resolved annotation (units are in the names).

    A field whose type maps to no column type is a :class:`ConfigurationError` when this module is
    imported (before any table is built): map the type in ``_COLUMN_TYPES`` or skip the field.
    """
    hints = get_type_hints(cls)
    out: list[Column[Any]] = []
    for f in fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        if get_origin(hint) in (Union, UnionType):
            args = [a for a in get_args(hint) if a is not type(None)]
            hint = args[0] if len(args) == 1 else hint
        column_type = _COLUMN_TYPES.get(hint)
        if column_type is None:
            raise ConfigurationError(
                f"history table of {cls.__name__}: field {f.name} has type {hints[f.name]!r}, which maps to"
                " no column type"
            )
        out.append(Column(f.name, column_type(), nullable=True))
    return out


history_states = Table(
    "history_states",
    metadata,
    *_key(),
    Column("status", String(16), nullable=False),
    Column("end_ts_ms", BigInteger, nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("resume_json", Text, nullable=True),
)
history_drives = Table(
    "history_drives",
    metadata,
    *_key(),
    *_columns_of(Drive, ("vehicle_id", "start_ts_ms", "route")),
    Column("route_json", Text, nullable=False),
)
history_charges = Table(
    "history_charges", metadata, *_key(), *_columns_of(ChargeSession, ("vehicle_id", "start_ts_ms"))
)
history_drains = Table(
    "history_drains", metadata, *_key(), *_columns_of(ParkedDrain, ("vehicle_id", "start_ts_ms"))
)
history_excluded = Table(
    "history_excluded",
    metadata,
    Column("vehicle_id", String(64), primary_key=True),
    Column("ts_ms", BigInteger, primary_key=True),
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
)
_REASON_VALUES: Final = {r: r.value for r in RejectionReason}
_NAN_SENTINEL: Final = -9.0e300  # SQLite has no NaN literal: NULLs come back as this and turn into NaN
# What load_window selects, in this order: TelemetryColumns' fields (its signals' kinds come from there).
_WINDOW_NAMES: Final = ("ts_ms", *FLOAT_COLUMNS, *BOOL_COLUMNS, "gear_code")


def _window_columns(pg: bool) -> str:
    """The SELECT list of :meth:`HistoryStore.load_window`: every column as one float8, NULL as NaN."""
    nan = "'NaN'::float8" if pg else str(_NAN_SENTINEL)
    real = "float8" if pg else "REAL"
    exprs = [f"CAST(ts_ms AS {real})"]
    exprs += [f"CAST(COALESCE({n}, {nan}) AS {real})" for n in FLOAT_COLUMNS]
    exprs += [
        f"CAST(CASE WHEN {n} IS NULL THEN {nan} WHEN {n} THEN 1.0 ELSE 0.0 END AS {real})"
        for n in BOOL_COLUMNS
    ]
    gear = " ".join(f"WHEN '{g}' THEN {float(code)}" for g, code in GEAR_CODES.items())
    exprs.append(f"CAST(CASE gear {gear} ELSE -1.0 END AS {real})")
    return ", ".join(exprs)


def _resume_to_json(point: ResumePoint) -> str:
    d: dict[str, Any] = asdict(point.state)
    d["status"] = point.state.status.value
    if point.records is not None:
        d["records"] = point.records  # records up to the next resume point (absent: derived before counts)
    if point.gps_ref is not None:  # the GPS-jump walk's reference (absent: no fix before, or stored before)
        ref = point.gps_ref
        d["gps_ref"] = [ref.ts_ms, ref.lat_deg, ref.lon_deg]
    if point.raw_dropped:  # its raw records were partly dropped: its derived rows are kept, never re-derived
        d["raw_dropped"] = True
    return json.dumps(d)


def _resume_from_json(from_ms: int, text: str) -> ResumePoint:
    d = json.loads(text)
    records = d.pop("records", None)
    ref = d.pop("gps_ref", None)
    raw_dropped = bool(d.pop("raw_dropped", False))
    d["status"] = VehicleStatus(d["status"])
    gps_ref = GpsFix(int(ref[0]), float(ref[1]), float(ref[2])) if ref is not None else None
    return ResumePoint(from_ms, VehicleState(**d), records, gps_ref, raw_dropped)


class HistoryStore:
    """Derived history on SQLite or PostgreSQL; the deriver's port and the API's read side."""

    def __init__(
        self,
        engine: Engine,
        usable_kwh_of_model: Callable[[str], float | None] | None = None,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self._engine = engine
        # Shared with the telemetry writer on SQLite (one writer at a time; a no-op on PostgreSQL).
        self._write_lock = write_lock if write_lock is not None else nullcontext()
        self._usable_kwh_of_model = usable_kwh_of_model
        self._pg = engine.dialect.name == "postgresql"
        self._window_columns = _window_columns(self._pg)

    # --- the deriver's port ---------------------------------------------------------------------------

    def load_window(self, vehicle_id: str, from_ms: int | None, to_ms: int | None = None) -> TelemetryColumns:
        """The vehicle's records in ``[from_ms, to_ms)`` (None: unbounded) as NumPy columns (NULL = NaN).

        Every column comes back as one float8, so the rows have a fixed layout: PostgreSQL streams them
        as binary COPY parsed by NumPy in one pass; SQLite's cursor feeds ``numpy.fromiter``.
        """
        width = len(_WINDOW_NAMES)
        where = "vehicle_id = %s" if self._pg else "vehicle_id = ?"
        params: list[Any] = [vehicle_id]
        if from_ms is not None:
            where += " AND ts_ms >= " + ("%s" if self._pg else "?")
            params.append(from_ms)
        if to_ms is not None:
            where += " AND ts_ms < " + ("%s" if self._pg else "?")
            params.append(to_ms)
        sql = f"SELECT {self._window_columns} FROM telemetry WHERE {where} ORDER BY ts_ms"
        data = self._fetch_pg(sql, params, width) if self._pg else self._fetch_sqlite(sql, params, width)
        if not self._pg:
            data[data == _NAN_SENTINEL] = np.nan
        arrays: dict[str, Any] = {name: data[:, k] for k, name in enumerate(_WINDOW_NAMES)}
        arrays["ts_ms"] = arrays["ts_ms"].astype(np.int64)
        return TelemetryColumns.from_arrays(vehicle_id, arrays)

    def _fetch_sqlite(self, sql: str, params: list[Any], width: int) -> npt.NDArray[np.float64]:
        raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(sql, params)
            rows = cast("Iterable[tuple[float, ...]]", cur)  # a sqlite3 cursor iterates its rows
            flat: npt.NDArray[np.float64] = np.fromiter(rows, dtype=np.dtype((np.float64, (width,))))
        finally:
            raw.close()
        return flat.reshape(-1, width)

    def _fetch_pg(self, sql: str, params: list[Any], width: int) -> npt.NDArray[np.float64]:
        # Binary COPY: 19-byte header, then per row an int16 field count and per field an int32 length
        # and 8 bytes of big-endian float8; a 2-byte trailer (PostgreSQL docs, "COPY", Binary Format).
        from psycopg import sql as pgsql

        raw = self._engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            query = pgsql.SQL(sql.replace("%s", "{}")).format(*(pgsql.Literal(p) for p in params))
            chunks = []
            with (
                conn.cursor() as cur,
                cur.copy(pgsql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(query)) as copy,
            ):
                for chunk in copy:
                    chunks.append(bytes(chunk))
            raw.commit()
        finally:
            raw.close()
        blob = b"".join(chunks)
        row = np.dtype([("n", ">i2"), *((f"f{k}", [("len", ">i4"), ("v", ">f8")]) for k in range(width))])
        body = blob[19 : 19 + (len(blob) - 21) // row.itemsize * row.itemsize]
        parsed = np.frombuffer(body, dtype=row)
        out = np.empty((parsed.shape[0], width))
        for k in range(width):
            out[:, k] = parsed[f"f{k}"]["v"]
        return out

    def resume_point(self, vehicle_id: str, at_or_before_ms: int) -> ResumePoint | None:
        """The latest stored resume point at or before ``at_or_before_ms``."""
        s = history_states.c
        query = (
            select(s.start_ts_ms, s.resume_json)
            .where(s.vehicle_id == vehicle_id, s.start_ts_ms <= at_or_before_ms, s.resume_json.is_not(None))
            .order_by(s.start_ts_ms.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _resume_from_json(int(row[0]), row[1]) if row else None

    def resume_points(self, vehicle_id: str, from_ms: int | None, limit: int) -> list[ResumePoint]:
        """Up to ``limit`` stored resume points at or after ``from_ms`` (None: the first), oldest first."""
        s = history_states.c
        query = select(s.start_ts_ms, s.resume_json).where(
            s.vehicle_id == vehicle_id, s.resume_json.is_not(None)
        )
        if from_ms is not None:
            query = query.where(s.start_ts_ms >= from_ms)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(s.start_ts_ms).limit(limit)).all()
        return [_resume_from_json(int(ts), text) for ts, text in rows]

    def derived_records(self, vehicle_id: str) -> int | None:
        """How many records the stored history was derived from: the resume points' counts summed.

        None when a resume point has no count (history derived before counts were kept).
        """
        records = (
            "CAST(CAST(resume_json AS json) ->> 'records' AS bigint)"
            if self._pg
            else "json_extract(resume_json, '$.records')"
        )
        sql = text(
            f"SELECT count(*), count({records}), sum({records}) FROM history_states"
            " WHERE vehicle_id = :v AND resume_json IS NOT NULL"
        )
        with self._engine.connect() as conn:
            points, counted, total = conn.execute(sql, {"v": vehicle_id}).one()
        return int(total or 0) if points == counted else None

    def record_total(self, vehicle_id: str) -> int:
        """How many records of the vehicle are stored (kept by the ingest transaction; 0 if none)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(vehicle_latest.c.record_count).where(vehicle_latest.c.vehicle_id == vehicle_id)
            ).first()
        return int(row[0]) if row else 0

    def record_count(self, vehicle_id: str, from_ms: int) -> int:
        """How many records of the vehicle are stored at or after ``from_ms``."""
        t = telemetry.c
        query = select(func.count()).where(t.vehicle_id == vehicle_id, t.ts_ms >= from_ms)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def segment_records(self, vehicle_id: str, starts: Sequence[int]) -> list[int]:
        """Records stored from each of ``starts`` (ascending) to the next one; from the last, to the end."""
        if not starts:
            return []
        bounds = [*(int(s) for s in starts), 2**62]
        values = ", ".join(f"({k}, {lo}, {hi})" for k, (lo, hi) in enumerate(pairwise(bounds)))
        sql = text(
            f"WITH seg(k, lo, hi) AS (VALUES {values}) SELECT seg.k, (SELECT count(*) FROM telemetry t"
            " WHERE t.vehicle_id = :v AND t.ts_ms >= seg.lo AND t.ts_ms < seg.hi) FROM seg ORDER BY seg.k"
        )
        with self._engine.connect() as conn:
            return [int(n) for _, n in conn.execute(sql, {"v": vehicle_id})]

    def rewrite_resume_points(self, vehicle_id: str, points: Sequence[ResumePoint]) -> None:
        """Store these resume points over the stored ones at the same times (their spans stay as they are)."""
        if not points:
            return
        s = history_states.c
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                update(history_states)
                .where(s.vehicle_id == vehicle_id, s.start_ts_ms == bindparam("p_ts"))
                .values(resume_json=bindparam("p_json")),
                [{"p_ts": p.from_ms, "p_json": _resume_to_json(p)} for p in points],
            )

    def replace_history(
        self, vehicle_id: str, from_ms: int | None, history: DerivedHistory, to_ms: int | None = None
    ) -> None:
        """Replace derived rows starting in ``[from_ms, to_ms)`` (None: unbounded) by ``history``, atomically.

        Parked-drain flags compare a spell with the car's median, so every stored spell is flagged again
        against the medians of the whole stored history (as a derivation from scratch would flag them).
        """
        with self._write_lock, self._engine.begin() as conn:
            for table in (history_states, history_drives, history_charges, history_drains):
                conn.execute(
                    delete(table).where(*_in_window(table, table.c.start_ts_ms, vehicle_id, from_ms, to_ms))
                )
            rows = {
                history_states: [_span_row(s) for s in history.spans],
                history_drives: [_drive_row(d) for d in history.drives],
                history_charges: [asdict(c) for c in history.charges],
                history_drains: [asdict(d) for d in history.drains],
            }
            for table, batch in rows.items():
                if batch:
                    conn.execute(insert(table), batch)
            self._replace_excluded(conn, vehicle_id, from_ms, to_ms, history.excluded)
            self._flag_drains(conn, vehicle_id)

    @staticmethod
    def _replace_excluded(
        conn: Connection,
        vehicle_id: str,
        from_ms: int | None,
        to_ms: int | None,
        excluded: Sequence[QuarantinedRecord],
    ) -> None:
        """Make the window's excluded records these, writing only the rows that differ.

        A window re-derived while a car drives holds mostly the same excluded records as the last time
        (a car whose fixes often jump has thousands): rewriting them all each round was most of the write.
        """
        where, params = "vehicle_id = ?", list[Any]([vehicle_id])
        if from_ms is not None:
            where, params = where + " AND ts_ms >= ?", [*params, from_ms]
        if to_ms is not None:
            where, params = where + " AND ts_ms < ?", [*params, to_ms]
        delete_sql = "DELETE FROM history_excluded WHERE vehicle_id = ? AND ts_ms = ?"
        insert_sql = "INSERT INTO history_excluded (vehicle_id, ts_ms, reason, detail) VALUES (?, ?, ?, ?)"
        if conn.dialect.name == "postgresql":
            where, delete_sql, insert_sql = (q.replace("?", "%s") for q in (where, delete_sql, insert_sql))
        wanted = {(q.ts_ms, _REASON_VALUES[q.reason], q.detail) for q in excluded}
        # The driver's own cursor, in this transaction: thousands of rows, compared and written as tuples.
        cursor = conn.connection.cursor()
        try:
            cursor.execute(f"SELECT ts_ms, reason, detail FROM history_excluded WHERE {where}", params)
            stored = {(int(ts), reason, detail) for ts, reason, detail in cursor.fetchall()}
            gone = sorted(ts for ts, _, _ in stored - wanted)
            if gone:
                cursor.executemany(delete_sql, [(vehicle_id, ts) for ts in gone])
            new = sorted(wanted - stored)
            if new:
                cursor.executemany(insert_sql, [(vehicle_id, *row) for row in new])
        finally:
            cursor.close()

    @staticmethod
    def _flag_drains(conn: Connection, vehicle_id: str) -> None:
        d = history_drains.c
        rows = conn.execute(
            select(d.start_ts_ms, d.asleep, d.drain_w, d.flagged).where(d.vehicle_id == vehicle_id)
        ).all()
        spells = [ParkedDrain(vehicle_id, int(ts), 0, bool(a), 0.0, float(w), False) for ts, a, w, _ in rows]
        now = {s.start_ts_ms: s.flagged for s in flag_drain(spells)}
        changed = [
            {"ts": int(ts), "flag": now[int(ts)]} for ts, _, _, flagged in rows if now[int(ts)] != flagged
        ]
        if changed:
            conn.execute(
                update(history_drains)
                .where(d.vehicle_id == vehicle_id, d.start_ts_ms == bindparam("ts"))
                .values(flagged=bindparam("flag")),
                changed,
            )

    def vehicle_context(self, vehicle_id: str, before_ms: int | None = None) -> VehicleContext:
        """Usable capacity (catalogue), places, tariffs, and energy per SoC % of charges before ``before_ms``.

        ``before_ms`` None is a derivation from the first record: no stored charge comes before it.
        """
        with self._engine.connect() as conn:
            row = conn.execute(select(vehicles.c.model_id).where(vehicles.c.vehicle_id == vehicle_id)).first()
            model_id = row[0] if row else None
            found = places_of_vehicle(conn, vehicle_id)
            tariffs = tariffs_named(conn, {p.tariff_id for p in found if p.tariff_id})
            c = history_charges.c
            calibrated = (
                select(c.kwh_per_soc_pct)
                .where(c.vehicle_id == vehicle_id, c.kwh_per_soc_pct.is_not(None))
                .order_by(c.start_ts_ms.desc())
                .limit(CALIBRATION_SESSIONS)
            )
            if before_ms is not None:
                calibrated = calibrated.where(c.start_ts_ms < before_ms)
            samples = tuple(reversed([float(v) for v in conn.execute(calibrated).scalars()]))
        usable = self._usable_kwh_of_model(model_id) if model_id and self._usable_kwh_of_model else None
        return VehicleContext(
            usable_kwh=usable,
            kwh_per_soc_pct_samples=samples if before_ms is not None else (),
            places=found,
            tariffs=tariffs,
        )

    # --- reads for the API and CLI ---------------------------------------------------------------------

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """Drives that started in ``[from_ms, to_ms)``, oldest first."""
        return [_drive(r) for r in self._rows(history_drives, vehicle_id, from_ms, to_ms, limit)]

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        """Charge sessions that started in ``[from_ms, to_ms)``, oldest first."""
        return [_charge(r) for r in self._rows(history_charges, vehicle_id, from_ms, to_ms, limit)]

    def states(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        """State spans that started in ``[from_ms, to_ms)``, oldest first."""
        rows = self._rows(history_states, vehicle_id, from_ms, to_ms, limit)
        for r in rows:
            r.pop("resume_json")
        return rows

    def state_spans_overlapping(
        self, vehicle_ids: Sequence[str], from_ms: int, to_ms: int
    ) -> dict[str, list[dict[str, Any]]]:
        """Each vehicle's state spans that overlap ``[from_ms, to_ms)``, oldest first (every id a key).

        The one under way at ``from_ms`` (the latest that started before it, unless it had ended) and every
        one that started inside the window: two indexed reads per :data:`IDS_PER_READ` vehicles, however long
        their history (a fleet page of 1,000 cars made 2,000 reads and built a dict per row: 3.3 s).
        """
        s = history_states.c
        cols = (s.vehicle_id, s.status, s.start_ts_ms, s.end_ts_ms, s.is_open)
        keys = ("status", "start_ts_ms", "end_ts_ms", "is_open")
        out: dict[str, list[dict[str, Any]]] = {v: [] for v in vehicle_ids}
        inner = history_states.alias("later")
        for ids in _chunks(list(out)):
            latest_before = (
                select(func.max(inner.c.start_ts_ms))
                .where(inner.c.vehicle_id == s.vehicle_id, inner.c.start_ts_ms < from_ms)
                .scalar_subquery()
            )
            before = select(*cols).where(s.vehicle_id.in_(ids), s.start_ts_ms == latest_before)
            inside = (
                select(*cols)
                .where(s.vehicle_id.in_(ids), s.start_ts_ms >= from_ms, s.start_ts_ms < to_ms)
                .order_by(s.vehicle_id, s.start_ts_ms)
            )
            with self._engine.connect() as conn:
                for vid, *row in conn.execute(before):
                    span = dict(zip(keys, row, strict=True))
                    if span["end_ts_ms"] > from_ms or span["is_open"]:
                        out[vid].append(span)
                for vid, *row in conn.execute(inside):
                    out[vid].append(dict(zip(keys, row, strict=True)))
        return out

    def place_visits(
        self, vehicle_ids: Sequence[str], from_ms: int, to_ms: int
    ) -> dict[str | None, dict[str, float]]:
        """Per place id (None: no place) these vehicles' arrivals, departures, charges and charged kWh.

        Drives and charges that started in ``[from_ms, to_ms)``: an arrival is a drive that ended at the
        place, a departure one that started there; a charge's kWh is from the grid where measured, else
        into the pack. Counted in the database (grouped), not by reading every drive's route.
        """
        d, c = history_drives.c, history_charges.c
        out: dict[str | None, dict[str, float]] = {}

        def add(place_id: str | None, key: str, value: float) -> None:
            row = out.setdefault(place_id, dict.fromkeys(("arrivals", "departures", "charges", "kwh"), 0.0))
            row[key] += value

        for ids in _chunks(list(dict.fromkeys(vehicle_ids))):
            window = (d.vehicle_id.in_(ids), d.start_ts_ms >= from_ms, d.start_ts_ms < to_ms)
            charged = (c.vehicle_id.in_(ids), c.start_ts_ms >= from_ms, c.start_ts_ms < to_ms)
            kwh = func.coalesce(c.energy_grid_kwh, c.energy_added_kwh, 0.0)
            with self._engine.connect() as conn:
                trips = select(d.start_place_id, d.end_place_id, func.count()).where(*window)
                for start, end, n in conn.execute(trips.group_by(d.start_place_id, d.end_place_id)):
                    add(end, "arrivals", n)
                    add(start, "departures", n)
                for place, n, total in conn.execute(
                    select(c.place_id, func.count(), func.sum(kwh)).where(*charged).group_by(c.place_id)
                ):
                    add(place, "charges", n)
                    add(place, "kwh", float(total or 0.0))
        return out

    def drains(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        """Parked-drain spells that started in ``[from_ms, to_ms)``, oldest first."""
        return self._rows(history_drains, vehicle_id, from_ms, to_ms, limit)

    def excluded(self, vehicle_id: str, limit: int) -> list[dict[str, Any]]:
        """Records left out of the history because they contradict their neighbours."""
        e = history_excluded.c
        q = select(history_excluded).where(e.vehicle_id == vehicle_id).order_by(e.ts_ms).limit(limit)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def stop_positions(self, vehicle_id: str, from_ms: int, to_ms: int) -> list[tuple[float, float]]:
        """Where the vehicle's drives that started in ``[from_ms, to_ms)`` ended (its stops)."""
        c = history_drives.c
        q = select(c.end_lat_deg, c.end_lon_deg).where(
            c.vehicle_id == vehicle_id,
            c.start_ts_ms >= from_ms,
            c.start_ts_ms < to_ms,
            c.end_lat_deg.is_not(None),
            c.end_lon_deg.is_not(None),
        )
        with self._engine.connect() as conn:
            return [(float(a), float(b)) for a, b in conn.execute(q.order_by(c.start_ts_ms))]

    def fixes(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[tuple[int, float, float]]:
        """Position fixes ``(ts_ms, lat_deg, lon_deg)`` in ``[from_ms, to_ms)``, less excluded records."""
        t, e = telemetry.c, history_excluded.c
        excluded = select(e.ts_ms).where(e.vehicle_id == vehicle_id, e.ts_ms == t.ts_ms).exists()
        q = (
            select(t.ts_ms, t.lat_deg, t.lon_deg)
            .where(
                t.vehicle_id == vehicle_id,
                t.ts_ms >= from_ms,
                t.ts_ms < to_ms,
                t.lat_deg.is_not(None),
                t.lon_deg.is_not(None),
                ~excluded,
            )
            .order_by(t.ts_ms)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(int(ts), float(a), float(b)) for ts, a, b in conn.execute(q)]

    def _rows(
        self, table: Table, vehicle_id: str, from_ms: int, to_ms: int, limit: int
    ) -> list[dict[str, Any]]:
        c = table.c
        q = (
            select(table)
            .where(c.vehicle_id == vehicle_id, c.start_ts_ms >= from_ms, c.start_ts_ms < to_ms)
            .order_by(c.start_ts_ms)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


IDS_PER_READ: Final = 500  # vehicle ids per IN list: well under SQLite's and PostgreSQL's parameter limits


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + IDS_PER_READ] for i in range(0, len(ids), IDS_PER_READ)]


def _span_row(s: StateSpan) -> dict[str, Any]:
    return {
        "vehicle_id": s.vehicle_id,
        "start_ts_ms": s.start_ts_ms,
        "status": s.status.value,
        "end_ts_ms": s.end_ts_ms,
        "is_open": s.is_open,
        "resume_json": _resume_to_json(s.resume) if s.resume else None,
    }


def _in_window(
    table: Table, ts: Column[Any], vehicle_id: str, from_ms: int | None, to_ms: int | None
) -> list[Any]:
    where: list[Any] = [table.c.vehicle_id == vehicle_id]
    if from_ms is not None:
        where.append(ts >= from_ms)
    if to_ms is not None:
        where.append(ts < to_ms)
    return where


_DRIVE_FIELDS: Final = tuple(f.name for f in fields(Drive) if f.name != "route")


def _drive_row(d: Drive) -> dict[str, Any]:
    row = {name: getattr(d, name) for name in _DRIVE_FIELDS}  # not asdict: it copies the route point by point
    row["route_json"] = json.dumps(d.route)
    return row


def _drive(row: dict[str, Any]) -> Drive:
    values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(Drive)}
    values["route"] = tuple(tuple(p) for p in json.loads(row["route_json"]))
    return Drive(**values)


def _charge(row: dict[str, Any]) -> ChargeSession:
    values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(ChargeSession)}
    return ChargeSession(**values)
