"""The one error vocabulary of Microfleet.

::

    MicrofleetError                 every error Microfleet raises on purpose
    ├── ConfigurationError          a setting, scenario file or CLI option is wrong
    ├── NotFoundError               a vehicle, user, token or record does not exist
    ├── AuthenticationError         no credential, or one that matches nobody
    ├── PermissionDeniedError       a known caller asked for something not granted to them
    ├── ConflictError               the thing already exists (user name, vehicle id)
    ├── TooManyRequestsError        a client failed too often (bad tokens): retry after a wait
    ├── StoreUnavailableError       the database cannot be reached or took no write now: retry later
    ├── LiveFeedEndedError          the live feed ended a subscription (too slow, access gone): close code
    └── InvalidInputError           input refused as a whole (undecodable payload, bad query)
        ├── PayloadTooLargeError    a body or batch larger than this server accepts
        ├── PhysicsInputError       a vehicle spec or drive cycle the physics cannot use
        ├── ChargingInputError      a fleet snapshot the charging planner cannot plan (names the input)
        └── RouteInputError         a route off the map, unreachable, or a trip the energy model cannot take

Per-record telemetry problems are not exceptions: the validator returns a
:class:`microfleet.domain.telemetry.RejectionReason` and the record goes to quarantine.
"""

from __future__ import annotations


class MicrofleetError(Exception):
    """Base of every error Microfleet raises on purpose; carries a machine code."""

    code = "microfleet_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(MicrofleetError):
    """A setting, scenario file or command-line option is wrong."""

    code = "configuration_error"


class NotFoundError(MicrofleetError):
    """A vehicle, user, token or record does not exist (or is not visible to the caller)."""

    code = "not_found"


class AuthenticationError(MicrofleetError):
    """No credential was given, or it matches nobody."""

    code = "not_authenticated"


class PermissionDeniedError(MicrofleetError):
    """A known caller asked for something not granted to them."""

    code = "permission_denied"


class ConflictError(MicrofleetError):
    """The thing to create already exists."""

    code = "conflict"


class TooManyRequestsError(MicrofleetError):
    """A client failed too often (authentication with bad tokens); it may try again after a wait."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailableError(MicrofleetError):
    """The database cannot be reached, or could not take this write now; the caller should retry."""

    code = "store_unavailable"


class LiveFeedEndedError(MicrofleetError):
    """The live feed ended a WebSocket subscription; ``close_code`` and the reason go to the client.

    A slow client (1013) resumes with its last event id; one whose access ended (1008) logs in again.
    """

    code = "live_feed_ended"

    def __init__(self, message: str, close_code: int = 1008) -> None:
        super().__init__(message)
        self.close_code = close_code


class InvalidInputError(MicrofleetError):
    """Input refused as a whole: an undecodable payload or a query the store cannot answer."""

    code = "invalid_input"


class PayloadTooLargeError(InvalidInputError):
    """A request body or batch larger than this server accepts."""

    code = "payload_too_large"


class PhysicsInputError(InvalidInputError):
    """A vehicle spec or drive cycle that the physics models cannot use."""

    code = "invalid_physics_input"


class ChargingInputError(InvalidInputError):
    """A fleet snapshot the charging planner refuses: the message names the car, charger, site or booking."""

    code = "invalid_charging_input"


class RouteInputError(InvalidInputError):
    """A route request the road graph or the trip-energy model cannot answer: off the map, unreachable."""

    code = "invalid_route"
