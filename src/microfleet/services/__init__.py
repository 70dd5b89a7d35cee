"""Microfleet's use cases, one module per family; each owns the small ports (``Protocol``s) it needs.

Entry points (API routes, CLI commands, the demo) call these and hold no business rule of their own;
``microfleet.store`` implements the ports; ``microfleet.bootstrap`` wires the two together.
"""
