"""The composition root: builds Microfleet's services over a store from settings. Nothing at import time.

Only this module and the entry points (``microfleet.cli``, ``microfleet.api``) read settings; every
service gets the values it needs, and every store is built once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from microfleet.domain.catalogue import Catalogue, default_catalogue_path, load_catalogue
from microfleet.domain.reference_data import reference_data_dir
from microfleet.domain.tariffs import StoredTariff
from microfleet.domain.telemetry_codec import DecodeLimits
from microfleet.errors import ConfigurationError, NotFoundError
from microfleet.ingest.http import HttpTelemetryAdapter
from microfleet.ingest.osmand_adapter import OsmAndAdapter
from microfleet.physics import usable_kwh as physics_usable_kwh
from microfleet.services.accounts import AccountAdmin, AccountService
from microfleet.services.alert_worker import AlertWorker
from microfleet.services.alerts import AlertService
from microfleet.services.api_tokens import ApiTokenService
from microfleet.services.battery import BatteryService, BatteryWorker, model_facts
from microfleet.services.bookings import BookingService
from microfleet.services.charge_points import ChargePointService
from microfleet.services.charging import ChargingService
from microfleet.services.charging_worker import ChargingWorker
from microfleet.services.commands import CommandService
from microfleet.services.derivation import DerivationQueue, HistoryDeriver
from microfleet.services.driving import DrivingService
from microfleet.services.fleet_views import FleetViewService
from microfleet.services.health import StoreStatus
from microfleet.services.history import HistoryService
from microfleet.services.ingest import IngestService
from microfleet.services.invitations import InvitationService
from microfleet.services.live import LiveEvents
from microfleet.services.live_feed import LiveFeed, LiveFeedLimits
from microfleet.services.maintenance import MaintenanceService, MaintenanceWorker
from microfleet.services.mqtt_access import MqttAccessService
from microfleet.services.places import PlaceService
from microfleet.services.quarantine import QuarantineService
from microfleet.services.route_energy import RouteEnergyService
from microfleet.services.routes import RouteService
from microfleet.services.tariffs import TariffService
from microfleet.services.throttle import FailureLimits, FailureThrottle
from microfleet.services.tracker_keys import TrackerKeyService
from microfleet.services.vehicle_insights import VehicleInsightsService
from microfleet.services.vehicles import VehicleService
from microfleet.services.web_sessions import WebSessionService
from microfleet.settings import Settings
from microfleet.store.accounts import AccountStore
from microfleet.store.alerts_store import AlertStore
from microfleet.store.battery_store import BatteryStore
from microfleet.store.charging_store import ChargingStore
from microfleet.store.commands_store import BookingStore
from microfleet.store.drive_signals import DriveSignalStore
from microfleet.store.engine import make_engine
from microfleet.store.history import HistoryStore
from microfleet.store.invitations import InvitationStore
from microfleet.store.live_store import LiveEventStore
from microfleet.store.maintenance_store import MaintenanceStore
from microfleet.store.migrate import StoreProbe, upgrade
from microfleet.store.osm_roads import OsmSpeedLimits
from microfleet.store.places_store import PlaceStore
from microfleet.store.quarantine_store import QuarantineStore
from microfleet.store.tariffs_store import TariffStore
from microfleet.store.telemetry_store import TelemetryStore
from microfleet.store.tracker_keys import TrackerKeyStore
from microfleet.store.web_accounts import WebAccountStore

if TYPE_CHECKING:  # aiomqtt loads only when the bridge is built
    from microfleet.ingest.alert_channels import MqttAlertTopic
    from microfleet.ingest.jetstream import JetStreamConfig
    from microfleet.ingest.jetstream_worker import IngestWorker
    from microfleet.ingest.mqtt import MqttConnection, MqttTelemetryAdapter
    from microfleet.ingest.ovms_bridge import OvmsBridge
    from microfleet.intelligence.energy_routing import RoadGraph


def wall_clock_ms() -> int:
    """Now, as UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Services:
    """The use cases of one Microfleet process, built once; each entry point takes the ones it uses.

    ``telemetry`` is the raw telemetry store, for tools that count or read back what was stored.
    """

    settings: Settings
    engine: Engine
    clock: Callable[[], int]
    admin: AccountAdmin
    accounts: AccountService
    vehicles: VehicleService
    ingest: IngestService
    http_ingest: HttpTelemetryAdapter
    tracker_keys: TrackerKeyService
    commands: CommandService  # remote commands: issue, dispatch, results, expiry, keys (docs/commands.md)
    bookings: BookingService
    osmand_ingest: OsmAndAdapter
    quarantine: QuarantineService
    history: HistoryService
    routes: RouteService  # learned trips, insights, the next-trip forecast (docs/routes.md)
    route_energy: RouteEnergyService  # per-car trip energy, energy-aware routing (docs/routes.md)
    places: PlaceService
    tariffs: TariffService
    deriver: HistoryDeriver
    derivations: DerivationQueue
    telemetry: TelemetryStore
    store_status: StoreStatus
    web_sessions: WebSessionService  # browser logins: passwords and session cookies (docs/web.md)
    api_tokens: ApiTokenService  # each user's own API tokens (docs/web.md)
    invitations: InvitationService  # an administrator's invitations, accepted with a password (docs/web.md)
    live_log: LiveEventStore  # the live feed's log; a store appends to it in its own transaction
    live_events: LiveEvents  # publishing to the live feed (commands, alerts)
    live_feed: LiveFeed  # the API's fan-out to WebSocket clients (polls only once someone subscribes)
    alerts: AlertService
    alert_worker: AlertWorker  # evaluates rules and sends the outbox (docs/alerts.md)
    charge_points: ChargePointService  # sites, OCPP chargers and what they report (docs/charging.md)
    charging: ChargingService  # the fleet's charging plan (docs/charging.md)
    charging_worker: ChargingWorker  # re-plans on a timer and on chargers' events; started by the API
    driving: DrivingService  # driver scores, harsh events, energy factors (docs/driver-score.md)
    battery: BatteryService  # SoC, SoH, range and care advice per car (docs/battery.md)
    insights: VehicleInsightsService  # a car's SoH trend, parked drain, charging costs (docs/web.md)
    battery_worker: BatteryWorker  # refits cars whose history moved, off the request path
    maintenance: MaintenanceService  # detectors, service records, the week's plan (docs/maintenance.md)
    maintenance_worker: MaintenanceWorker  # runs the detectors over cars with new data, off the request path
    fleet_views: FleetViewService  # the fleet page's hourly use, plan per charger, places (docs/web.md)

    def close(self) -> None:
        """Stop the background deriver and release database connections."""
        self.derivations.stop()
        self.commands.stop_expiring()
        self.alert_worker.stop()
        self.battery_worker.stop()
        self.maintenance_worker.stop()
        self.engine.dispose()


def build_services(
    settings: Settings, *, migrate: bool = True, clock: Callable[[], int] = wall_clock_ms
) -> Services:
    """Open the store (migrating it to the latest schema unless told not to) and wire the services."""
    engine = make_engine(settings.database_url, settings.database_schema)
    if migrate:
        upgrade(engine, settings.database_schema)
    window_ms = round(settings.live_resume_window_s * 1000)
    live_log = LiveEventStore(engine, window_ms=window_ms)
    telemetry = TelemetryStore(
        engine,
        quarantine_text_max_bytes=settings.ingest_max_record_bytes,
        quarantine_max_rows_per_vehicle=settings.quarantine_max_rows_per_vehicle,
        live=live_log,
    )
    write_lock = telemetry.write_lock()
    history_store = HistoryStore(
        engine, usable_kwh_of_model=_usable_kwh_lookup(settings), write_lock=write_lock
    )
    place_store = PlaceStore(engine, write_lock=write_lock)
    account_store = AccountStore(engine, clock)
    # One throttle for every kind of credential: a client guessing tracker keys and tokens by turns
    # draws on one bucket.
    failures = FailureThrottle(FailureLimits(settings.auth_failure_burst, settings.auth_failure_per_minute))
    accounts = AccountService(
        account_store, failures, device_overlap_ms=round(settings.device_credential_overlap_s * 1000)
    )
    tracker_keys = TrackerKeyService(TrackerKeyStore(engine, clock), accounts, failures)
    ingest = IngestService(
        telemetry, DecodeLimits(settings.ingest_max_batch_records, settings.ingest_max_record_bytes)
    )
    deriver = HistoryDeriver(history_store)
    places = PlaceService(place_store, accounts, history_store)
    alerts, alert_worker = _build_alerts(
        settings,
        AlertStore(engine, write_lock=write_lock),
        clock,
        accounts,
        account_store,
        places,
        LiveEvents(live_log, clock),
    )
    battery_store = BatteryStore(engine, write_lock=write_lock)
    battery = BatteryService(
        history_store, telemetry, battery_store, alerts, model_facts(settings.data_dir_path), clock
    )
    charging_store = ChargingStore(engine, write_lock=write_lock)
    charge_points = ChargePointService(charging_store, accounts, failures, clock)
    charging = ChargingService(
        charging_store,
        charge_points,
        telemetry,
        BookingStore(engine, write_lock=write_lock),
        TariffStore(engine, write_lock=write_lock),
        _car_spec_lookup(settings),
        clock,
        default_tariff=_default_charging_tariff,
    )
    route_energy = RouteEnergyService(
        history_store, _road_graph_source(settings), _catalogue_source(settings), accounts, clock
    )
    web_sessions = WebSessionService(
        WebAccountStore(engine, clock),
        failures,
        clock,
        lifetime_ms=round(settings.web_session_lifetime_s * 1000),
    )
    return Services(
        settings=settings,
        engine=engine,
        clock=clock,
        admin=account_store,
        accounts=accounts,
        vehicles=VehicleService(telemetry, page_size_max=settings.page_size_max_records),
        ingest=ingest,
        # SQLite has one writer, which the store's lock serialises: one request at a time is ingested, so
        # the others wait outside the GIL instead of contending for it (docs/benchmarks.md, Ingest).
        http_ingest=HttpTelemetryAdapter(ingest, concurrent=1 if engine.dialect.name == "sqlite" else None),
        tracker_keys=tracker_keys,
        commands=_build_commands(settings, engine, write_lock, accounts, clock, LiveEvents(live_log, clock)),
        bookings=BookingService(BookingStore(engine, write_lock=write_lock), accounts, clock),
        osmand_ingest=OsmAndAdapter(ingest, tracker_keys, speed_unit=settings.osmand_speed_unit),
        quarantine=QuarantineService(
            QuarantineStore(
                engine,
                page_max_bytes=settings.quarantine_page_max_bytes,
                text_max_bytes=settings.ingest_max_record_bytes,
            ),
            accounts,
            ingest,
            clock,
        ),
        history=HistoryService(history_store, place_store, accounts),
        driving=DrivingService(
            DriveSignalStore(engine),
            history_store,
            BookingStore(engine, write_lock=write_lock),
            OsmSpeedLimits(reference_data_dir(settings.data_dir_path) / "osm"),
            accounts,
            clock,
        ),
        routes=RouteService(
            history_store, place_store, _usable_kwh_lookup(settings), clock, energy=route_energy
        ),
        route_energy=route_energy,
        places=places,
        tariffs=TariffService(TariffStore(engine, write_lock=write_lock), accounts),
        deriver=deriver,
        derivations=DerivationQueue(deriver, telemetry, interval_s=settings.history_derive_interval_s),
        telemetry=telemetry,
        store_status=StoreProbe(engine),
        api_tokens=ApiTokenService(account_store),
        web_sessions=web_sessions,
        invitations=InvitationService(InvitationStore(engine, clock), account_store, web_sessions, clock),
        live_log=live_log,
        live_events=LiveEvents(live_log, clock),
        live_feed=LiveFeed(
            live_log,
            accounts,
            clock,
            LiveFeedLimits(
                poll_interval_s=settings.live_poll_interval_s,
                queue_max_events=settings.live_queue_max_events,
                window_ms=window_ms,
                visibility_refresh_s=settings.live_visibility_refresh_s,
            ),
        ),
        alerts=alerts,
        alert_worker=alert_worker,
        battery=battery,
        insights=VehicleInsightsService(history_store, battery_store, model_facts(settings.data_dir_path)),
        battery_worker=BatteryWorker(battery, interval_s=settings.battery_refit_interval_s),
        maintenance=(
            maintenance := MaintenanceService(
                MaintenanceStore(engine, write_lock=write_lock),
                telemetry,
                alerts,
                BookingStore(engine, write_lock=write_lock),
                accounts,
                clock,
            )
        ),
        maintenance_worker=MaintenanceWorker(
            maintenance, interval_s=settings.maintenance_interval_s or 600.0
        ),
        charge_points=charge_points,
        charging=charging,
        charging_worker=ChargingWorker(
            charging, charge_points, charging_store, interval_s=settings.charging_replan_interval_s or 900.0
        ),
        fleet_views=FleetViewService(
            accounts, history_store, history_store, telemetry, places, charging, charge_points, clock
        ),
    )


def _default_charging_tariff() -> StoredTariff:
    """The tariff a fleet without its own is planned at: the first built-in example (Shanghai's TOU)."""
    from microfleet.domain.tariffs import example_tariffs

    return example_tariffs()[0]


def _car_spec_lookup(settings: Settings) -> Callable[[str | None], tuple[float | None, float | None]]:
    """A catalogue model's usable kWh (the physics' rule) and its AC charging kW, for the planner."""
    usable_kwh = _usable_kwh_lookup(settings)
    catalogue: list[Catalogue | None] = []

    def spec(model_id: str | None) -> tuple[float | None, float | None]:
        if model_id is None:
            return None, None
        if not catalogue:
            try:
                catalogue.append(load_catalogue(default_catalogue_path(settings.data_dir_path)))
            except NotFoundError:
                catalogue.append(None)
        ac_kw = None
        if catalogue[0] is not None:
            try:
                stated = catalogue[0].get(model_id).ac_charge_kw
                ac_kw = stated.value if stated is not None else None
            except NotFoundError:
                pass
        return usable_kwh(model_id), ac_kw

    return spec


def _build_alerts(
    settings: Settings,
    store: AlertStore,
    clock: Callable[[], int],
    accounts: AccountService,
    account_store: AccountStore,
    places: PlaceService,
    live: LiveEvents,
) -> tuple[AlertService, AlertWorker]:
    """Alerts: the service, its evaluator and its outbox's sender over Apprise, MQTT and the live feed.

    Every new alert is published to the live feed, and to ``<prefix>/v1/<vehicle_id>/alerts`` when
    ``MICROFLEET_MQTT_HOST`` names a broker.
    """
    from microfleet.domain.alert_delivery import Channel
    from microfleet.ingest.alert_channels import AppriseNotifier
    from microfleet.services.alert_worker import AlertDispatcher, AlertEvaluator, AlertTopic, LiveAlertTopic

    notifier = AppriseNotifier()
    topics: dict[Channel, AlertTopic] = {Channel.LIVE: LiveAlertTopic(live)}
    if settings.mqtt_host is not None:
        topics[Channel.MQTT] = build_alert_topic(settings)
    alerts = AlertService(
        store,
        accounts,
        account_store,
        places,
        notifier,
        clock,
        broadcast=list(topics),
        lifecycle=topics[Channel.LIVE],
        page_size_max=settings.page_size_max_records,
    )
    evaluator = AlertEvaluator(alerts, store, store, places, clock, charge_limits=store)
    dispatcher = AlertDispatcher(store, accounts, account_store, notifier, clock, topics)
    return alerts, AlertWorker(evaluator, dispatcher, interval_s=settings.alerts_interval_s)


def build_alert_topic(settings: Settings) -> MqttAlertTopic:
    """The MQTT topic every alert is published to, on the broker of ``MICROFLEET_MQTT_*``."""
    import ssl

    from microfleet.ingest.alert_channels import MqttAlertTopic
    from microfleet.ingest.mosquitto_config import check_topic_prefix

    if settings.mqtt_host is None:
        raise ConfigurationError("set MICROFLEET_MQTT_HOST to the broker's address")
    tls = None
    if settings.mqtt_tls:
        ca_path = str(settings.mqtt_tls_ca_path) if settings.mqtt_tls_ca_path else None
        tls = ssl.create_default_context(cafile=ca_path)
    return MqttAlertTopic(
        settings.mqtt_host,
        settings.mqtt_port,
        topic_prefix=check_topic_prefix(settings.mqtt_topic_prefix),
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        client_id=f"{settings.mqtt_client_id}-alerts",
        tls_context=tls,
    )


def _road_graph_source(settings: Settings) -> Callable[[], RoadGraph]:
    """The routing graph of the shipped city's OSM extract, parsed when the first route is asked for."""

    def load() -> RoadGraph:
        from microfleet.domain.reference_data import reference_data_dir
        from microfleet.sim.road_graph import road_graph
        from microfleet.sim.scenario import CITY_FILES

        return road_graph(reference_data_dir(settings.data_dir_path) / CITY_FILES["shanghai_center"])

    return load


def _catalogue_source(settings: Settings) -> Callable[[], Catalogue]:
    """The vehicle catalogue, read once on first use (:class:`NotFoundError` without reference data)."""
    catalogue: list[Catalogue] = []

    def get() -> Catalogue:
        if not catalogue:
            catalogue.append(load_catalogue(default_catalogue_path(settings.data_dir_path)))
        return catalogue[0]

    return get


def _usable_kwh_lookup(settings: Settings) -> Callable[[str], float | None]:
    """Usable battery energy of a catalogue model (catalogue read once, on first use).

    The physics' rule (:func:`microfleet.physics.usable_kwh`): stated usable kWh, else the cited 0.93 x
    stated kWh, so a car whose maker states only a headline figure (Wuling, Chery) still gets energy
    from SoC.

    Without the catalogue (no reference data installed) no model's capacity is known: derivation then
    takes energy from the car's own counters and power, as it does for a model the catalogue lacks.
    """
    catalogue: list[Catalogue | None] = []

    def usable_kwh(model_id: str) -> float | None:
        if not catalogue:
            try:
                catalogue.append(load_catalogue(default_catalogue_path(settings.data_dir_path)))
            except NotFoundError:
                catalogue.append(None)
        if catalogue[0] is None:
            return None
        try:
            spec = catalogue[0].get(model_id)
        except NotFoundError:
            return None
        usable = physics_usable_kwh(spec, catalogue[0].all())
        return usable.value if usable else None

    return usable_kwh


def _build_commands(
    settings: Settings,
    engine: Engine,
    write_lock: AbstractContextManager[Any],
    accounts: AccountService,
    clock: Callable[[], int],
    live: LiveEvents,
) -> CommandService:
    """Remote commands over the store, with keys sealed by the key-encryption key file (read on first use)."""
    from microfleet.services.command_keys import CommandKeys, KeySealer
    from microfleet.store.commands_store import CommandKeyStore, CommandStore
    from microfleet.store.key_file import default_key_path, load_or_create_key

    kek_path = settings.command_key_encryption_key_path or default_key_path()
    keys = CommandKeys(
        CommandKeyStore(engine, write_lock=write_lock),
        KeySealer(lambda: load_or_create_key(kek_path)),
        previous_listed_ms=round(settings.command_key_previous_listed_s * 1000),
    )
    return CommandService(
        CommandStore(engine, write_lock=write_lock),
        keys,
        BookingStore(engine, write_lock=write_lock),
        accounts,
        clock,
        default_expiry_ms=round(settings.command_expiry_default_s * 1000),
        live=live,
    )


def build_mqtt_access(services: Services) -> MqttAccessService:
    """Cars' broker logins over the broker's files in ``MICROFLEET_MQTT_BROKER_CONFIG_DIR_PATH``."""
    from microfleet.ingest.mosquitto_config import MosquittoFiles

    settings = services.settings
    if settings.mqtt_broker_config_dir_path is None:
        raise ConfigurationError(
            "set MICROFLEET_MQTT_BROKER_CONFIG_DIR_PATH to the folder of the broker's password and ACL files"
        )
    files = MosquittoFiles(
        settings.mqtt_broker_config_dir_path,
        topic_prefix=settings.mqtt_topic_prefix,
        ingest_username=settings.mqtt_username,
        pid_path=settings.mqtt_broker_pid_path,
    )
    return MqttAccessService(services.accounts, files, ingest_username=settings.mqtt_username)


def build_mqtt_bridge(services: Services) -> tuple[MqttTelemetryAdapter, MqttConnection]:
    """The MQTT adapter over the services' ingest, and how it reaches the broker (aiomqtt loads here)."""
    import ssl

    from microfleet.ingest.mosquitto_config import check_topic_prefix
    from microfleet.ingest.mqtt import MqttConnection, MqttTelemetryAdapter, MqttTopics

    settings = services.settings
    if settings.mqtt_host is None:
        raise ConfigurationError("set MICROFLEET_MQTT_HOST to the broker's address")
    tls = None
    if settings.mqtt_tls:
        ca_path = str(settings.mqtt_tls_ca_path) if settings.mqtt_tls_ca_path else None
        tls = ssl.create_default_context(cafile=ca_path)
    publisher = None
    if settings.nats_url is not None:  # scale-out: batches go to JetStream, ingest workers store them
        from microfleet.ingest.jetstream import JetStreamPublisher

        publisher = JetStreamPublisher(jetstream_config(settings))
    adapter = MqttTelemetryAdapter(
        services.ingest,
        services.accounts,
        MqttTopics(check_topic_prefix(settings.mqtt_topic_prefix)),
        services.clock,
        max_payload_bytes=settings.ingest_max_body_bytes,
        publisher=publisher,
    )
    connection = MqttConnection(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_username,
        settings.mqtt_password,
        settings.mqtt_client_id,
        tls_context=tls,
        reconnect_max_s=settings.mqtt_reconnect_max_s,
    )
    return adapter, connection


def build_ovms_bridge(
    services: Services, modules: dict[str, str], *, root: str = "ovms"
) -> tuple[OvmsBridge, MqttConnection]:
    """The OVMS v3 bridge for ``modules`` (``user/vehicleid`` -> vehicle id) on the MQTT bridge's broker."""
    import dataclasses

    from microfleet.ingest.ovms_bridge import OvmsBridge

    _, connection = build_mqtt_bridge(services)  # the broker settings, under a client id of its own
    connection = dataclasses.replace(connection, client_id=f"{connection.client_id}-ovms")
    return OvmsBridge(services.ingest, services.accounts, modules, services.clock, root=root), connection


def jetstream_config(settings: Settings) -> JetStreamConfig:
    """The scale-out stream's settings (``MICROFLEET_NATS_*``); refused without ``MICROFLEET_NATS_URL``."""
    from microfleet.ingest.jetstream import JetStreamConfig

    if settings.nats_url is None:
        raise ConfigurationError("set MICROFLEET_NATS_URL to the NATS server(s), e.g. nats://127.0.0.1:4222")
    if not all(part.isalnum() or part in "-_" for part in settings.nats_prefix.replace(".", "")):
        raise ConfigurationError(
            f"MICROFLEET_NATS_PREFIX {settings.nats_prefix!r} may hold only letters, digits, '-', '_' and '.'"
        )
    return JetStreamConfig(
        servers=tuple(url.strip() for url in settings.nats_url.split(",") if url.strip()),
        prefix=settings.nats_prefix,
        stream=settings.nats_stream,
        partitions=settings.nats_partitions,
        duplicate_window_s=settings.nats_duplicate_window_s,
        ack_wait_s=settings.nats_ack_wait_s,
        lease_s=settings.nats_lease_s,
        replicas=settings.nats_replicas,
        reconnect_max_s=settings.nats_reconnect_max_s,
    )


def build_ingest_worker(services: Services, *, worker_id: str, derive_interval_s: float) -> IngestWorker:
    """An ingest worker over the services' ingest and deriver (nats loads here)."""
    from microfleet.ingest.jetstream_worker import IngestWorker
    from microfleet.store.stale_claims import StaleClaims

    return IngestWorker(
        services.ingest,
        jetstream_config(services.settings),
        StaleClaims(services.engine, services.telemetry),
        services.deriver,
        worker_id=worker_id,
        derive_interval_s=derive_interval_s,
        clock=services.clock,
    )


# A server allocates many short-lived, acyclic objects per record (decoded records, rows, results), which
# reference counting frees; CPython's default collector still runs a young-generation pass every 700 net
# allocations and, every 100 of those, a full pass over every object the process holds (FastAPI, SQLAlchemy,
# NumPy and SciPy's modules: about a million). Measured on `microfleet serve` ingesting 200,000 records:
# the collector took 0.61-0.95 s of 5.5-8.8 CPU-s with the defaults, 0.16-0.33 s with the startup heap
# frozen, 0.015 s frozen and with a young generation of 20,000 (bench/ingest.py; docs/benchmarks.md).
YOUNG_GENERATION_OBJECTS = 20_000


def settle_heap() -> None:
    """Move what startup built out of the collector's sight, and collect young objects less often.

    Call once a long-running process has built its services, just before it serves. Cyclic garbage is
    still collected (every 20,000 net allocations instead of 700); what startup built stays for the
    process's life anyway (the ``gc.freeze`` recommendation of the ``gc`` module's documentation).
    """
    import gc

    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_OBJECTS, older, oldest)
