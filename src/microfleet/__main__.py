"""Run the ``microfleet`` command as ``python -m microfleet``."""

from microfleet.cli import main

main()
