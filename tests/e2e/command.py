"""Run the ``microfleet`` command as a person does, in this process or as a new one.

:func:`microfleet` calls the command's own entry point, :func:`microfleet.cli.main` (the one the installed
``microfleet`` script and ``python -m microfleet`` call), with the arguments in ``sys.argv`` and the
streams captured by Typer's runner: a refusal is exit code 2 with ``error (code): message`` on stdout, a
bad option is exit code 2 with Click's message on stderr, as in a terminal 200 columns wide. It saves the
three seconds a new interpreter takes to import Microfleet, so most tests use it; :func:`microfleet_process`
runs ``python -m microfleet`` for the few tests that prove the command works as its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from microfleet.cli import main

_WIDTH = {"COLUMNS": "200"}  # Rich and Click read the terminal's width from COLUMNS on every print


@dataclass(frozen=True, slots=True)
class Ran:
    """What a run of the command left: its exit code and what it printed on each stream."""

    returncode: int
    stdout: str
    stderr: str


def _store(db: Path | None) -> list[str]:
    return [] if db is None else ["--database-url", f"sqlite:///{db}"]


def microfleet(*args: str, db: Path | None = None) -> Ran:
    """``microfleet ARGS [--database-url sqlite:///DB]`` through :func:`microfleet.cli.main`, in this process.

    An exception ``main`` lets escape (a bug: the process would die with a traceback) fails the test
    with that exception.
    """
    argv = ["microfleet", *args, *_store(db)]
    saved_argv = sys.argv
    with CliRunner().isolation(env=_WIDTH) as (stdout, stderr, _):
        sys.argv = argv
        try:
            main()
            code = 0
        except SystemExit as exit_:  # as the interpreter exits: None is 0, a message goes to stderr as 1
            code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
            if not isinstance(exit_.code, int | None):
                print(exit_.code, file=sys.stderr)
        finally:
            sys.argv = saved_argv
            sys.stdout.flush()
            sys.stderr.flush()
        return Ran(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def microfleet_process(*args: str, db: Path | None = None) -> Ran:
    """``python -m microfleet ARGS [--database-url sqlite:///DB]`` as a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "microfleet", *args, *_store(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **_WIDTH},
    )
    return Ran(done.returncode, done.stdout, done.stderr)
