"""The composition root: builds Microfleet's services from settings. Nothing is built at import time."""
