"""What every ``microfleet`` command shares: the console, the store option, settings and services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from microfleet.errors import ConfigurationError

if TYPE_CHECKING:  # the services (SQLAlchemy, the models) load only when a command runs
    from microfleet.bootstrap import Services
    from microfleet.settings import Settings

console = Console(soft_wrap=True)

DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="Store URL (default: MICROFLEET_DATABASE_URL or SQLite).")
]
VehicleArg = Annotated[str, typer.Argument(help="Vehicle id.")]


def settings_for(database_url: str | None = None) -> Settings:
    """The settings from ``MICROFLEET_*`` variables, with the store the command was given."""
    from microfleet.settings import Settings

    return Settings(database_url=database_url) if database_url else Settings()


def services_for(database_url: str | None) -> Services:
    """The services over the command's store (migrated to the latest schema)."""
    from microfleet.bootstrap import build_services

    return build_services(settings_for(database_url))


def check_tz(name: str) -> None:
    """Refuse a time zone that is not an IANA name."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
        ) from None
