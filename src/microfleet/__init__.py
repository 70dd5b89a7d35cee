"""Microfleet: telematics, battery intelligence and smart charging for small electric city cars."""

__version__ = "0.1.0"
