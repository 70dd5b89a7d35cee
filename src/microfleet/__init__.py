"""Microfleet: self-hosted telematics for small electric city cars and the shared fleets made of them."""

__version__ = "0.1.0"
