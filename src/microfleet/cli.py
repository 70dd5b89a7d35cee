"""The ``microfleet`` command: serve, demo, database and administration."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="microfleet",
    help="Microfleet: telematics, battery intelligence and smart charging for small electric city cars.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print Microfleet's version."""
    from microfleet import __version__

    typer.echo(__version__)


def main() -> None:
    """Run the ``microfleet`` command line."""
    app()
