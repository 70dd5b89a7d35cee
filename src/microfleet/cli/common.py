"""What every ``microfleet`` command shares: the console, the store option, settings and services."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from microfleet.errors import ConfigurationError, InvalidInputError, StoreUnavailableError

if TYPE_CHECKING:  # the services (SQLAlchemy, the models) load only when a command runs
    from pydantic import ValidationError

    from microfleet.bootstrap import Services
    from microfleet.settings import Settings

console = Console(soft_wrap=True)

DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="Store URL (default: MICROFLEET_DATABASE_URL or SQLite).")
]
VehicleArg = Annotated[str, typer.Argument(help="Vehicle id.")]

_WHERE_URL = "MICROFLEET_DATABASE_URL (or --database-url)"


def settings_for(database_url: str | None = None) -> Settings:
    """The settings from ``MICROFLEET_*`` variables, with the store the command was given.

    A variable pydantic refuses is a :class:`ConfigurationError` naming it, not a traceback.
    """
    from pydantic import ValidationError

    from microfleet.settings import Settings

    try:
        return Settings(database_url=database_url) if database_url else Settings()
    except ValidationError as exc:
        raise ConfigurationError(_settings_problem(exc)) from None


def _settings_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (
        f"MICROFLEET_{field.upper()}={first.get('input')!r} is not valid: {first['msg']}{more}; set it as "
        f"docs/configuration.md describes, or unset it to use the default"
    )


def safe_url(database_url: str) -> str:
    """The store's URL as it may be printed: the password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL holds no password we can find; say it is unparseable
        return "(an unparseable URL)"


@contextmanager
def opening_store(database_url: str) -> Iterator[None]:
    """Turn a store that cannot be opened at startup into one sentence: which store, why, what to do."""
    try:
        yield
    except StoreUnavailableError as exc:
        where, text = safe_url(database_url), " ".join(str(exc.__cause__ or "").split())
        missing = re.search(r'database "([^"]+)" does not exist', text)
        if missing:
            raise ConfigurationError(
                f"the PostgreSQL database {missing.group(1)!r} does not exist at {where}; create it "
                f"(createdb {missing.group(1)}) or point {_WHERE_URL} at one that does"
            ) from None
        if "password authentication failed" in text or "no pg_hba.conf entry" in text:
            raise ConfigurationError(
                f"the database at {where} refused the user or password; fix them in {_WHERE_URL}"
            ) from None
        reason = text.removeprefix("connection failed: ").split(" Is the server running")[0][:200]
        raise StoreUnavailableError(
            f"cannot open the store at {where} ({reason or 'no answer'}); start the database or fix "
            f"{_WHERE_URL}, then run the command again"
        ) from None


def services_for(database_url: str | None) -> Services:
    """The services over the command's store (migrated to the latest schema: every command does).

    They are closed when the command ends (the engine disposed, the deriver stopped): ``main`` calls
    :func:`close_services`.
    """
    from microfleet.bootstrap import build_services

    settings = settings_for(database_url)
    with opening_store(settings.database_url):
        services = build_services(settings)
    _opened.append(services)
    return services


_opened: list[Services] = []  # built by the running command; :func:`close_services` closes them


def close_services() -> None:
    """Close every service a command built (``main`` calls it when the command ends, however it ends)."""
    while _opened:
        _opened.pop().close()


def check_tz(name: str) -> None:
    """Refuse a time zone that is not an IANA name (the one check the API uses, as a configuration error)."""
    from microfleet.domain.time_zones import iana_zone

    try:
        iana_zone(name)
    except InvalidInputError as exc:
        raise ConfigurationError(str(exc)) from None
