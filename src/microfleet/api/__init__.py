"""The HTTP API (FastAPI): telemetry in, vehicles, positions and quarantine out."""

from microfleet.api.app import create_app

__all__ = ["create_app"]
