"""The one error tree: its drawing is the truth, every deliberate raise is in it, the API maps all of it."""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient

from microfleet import errors
from microfleet.api.errors import RETRY_AFTER_S, _status_for, install_error_handlers
from microfleet.domain.command_wire import CommandRefused
from microfleet.errors import (
    AuthenticationError,
    MicrofleetError,
    StoreUnavailableError,
    TooManyRequestsError,
)

_SRC = Path(errors.__file__).resolve().parent  # src/microfleet

# The classes microfleet.errors defines, by name.
ERROR_CLASSES: dict[str, type[MicrofleetError]] = {
    name: obj
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, MicrofleetError) and obj.__module__ == errors.__name__
}
# Everything a caller may raise: the base only names the family (the API answers a bare one with 500).
RAISABLE = [cls for cls in ERROR_CLASSES.values() if cls is not MicrofleetError]


# ---------------------------------------------------------------------------------------------------
# (a) the tree drawn in the docstring is the class hierarchy


def _drawn_tree(doc: str) -> list[tuple[str, str | None, str]]:
    """``(name, parent, connector)`` for each line of the tree after ``::`` in ``doc``, top to bottom."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "::") + 1
    block: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            if block:
                break
            continue
        block.append(line)
    root = re.match(r"^(\s*)(\w+)", block[0])
    assert root, f"no root class on the tree's first line: {block[0]!r}"
    margin = len(root.group(1))
    drawn: list[tuple[str, str | None, str]] = []
    parents: list[str] = []  # parents[d] is the latest class drawn at depth d
    for line in block:
        # a child is "├── " or "└── " after one "│   " or "    " per ancestor below the root
        node = re.match(r"^(?P<prefix>(?:(?:│   |    )*(?:├── |└── ))?)(?P<name>\w+)(?:\s|$)", line[margin:])
        assert node, f"not a tree line: {line!r}"
        prefix = node.group("prefix")
        depth = len(prefix) // 4
        assert depth <= len(parents), f"{node.group('name')} is drawn deeper than a child: {line!r}"
        del parents[depth:]
        drawn.append((node.group("name"), parents[-1] if parents else None, prefix[-4:-3]))
        parents.append(node.group("name"))
    return drawn


def test_the_drawn_tree_is_the_class_hierarchy() -> None:
    assert errors.__doc__
    drawn = _drawn_tree(errors.__doc__)
    names = [name for name, _parent, _connector in drawn]
    assert len(names) == len(set(names)), f"a class is drawn twice: {names}"

    drawn_parents = {name: parent for name, parent, _connector in drawn}
    actual_parents: dict[str, str | None] = {}
    for name, cls in ERROR_CLASSES.items():
        assert len(cls.__bases__) == 1, f"{name} has more than one base: {cls.__bases__}"
        base = cls.__bases__[0]
        actual_parents[name] = None if cls is MicrofleetError else base.__name__
    assert drawn_parents == actual_parents
    assert MicrofleetError.__bases__ == (Exception,)


def test_the_drawing_uses_the_last_branch_for_the_last_child() -> None:
    assert errors.__doc__
    drawn = _drawn_tree(errors.__doc__)
    for i, (name, parent, connector) in enumerate(drawn):
        if parent is None:
            continue
        later_siblings = [n for n, p, _c in drawn[i + 1 :] if p == parent]
        assert connector == ("├" if later_siblings else "└"), f"{name} is drawn with {connector!r}"


def test_every_error_has_its_own_code() -> None:
    for name, cls in ERROR_CLASSES.items():
        assert "code" in vars(cls), f"{name} inherits its code instead of declaring one"
    codes = [cls.code for cls in ERROR_CLASSES.values()]
    assert len(codes) == len(set(codes)), f"codes repeat: {sorted(codes)}"


# ---------------------------------------------------------------------------------------------------
# (b) every error raised on purpose is in the tree

# What src/microfleet may raise outside the tree: (class, where), the reason in a comment above each.
CLI_ONLY = "cli"  # a module under microfleet/cli (or microfleet/__main__.py)
IN_PYDANTIC_VALIDATOR = "validator"  # inside a function decorated with field_validator / model_validator
# The reference command verifier a telematics box copies as it is (docs/command-verifier.md): it imports
# nothing of Microfleet, so its refusals are its own; Microfleet's callers turn them into command results.
EMBEDDABLE = "microfleet/domain/command_wire.py"
ALLOWED: list[tuple[type[BaseException], str]] = [
    # A command ends with an exit status; the CLI prints MicrofleetErrors itself before exiting.
    (SystemExit, CLI_ONLY),
    # typer.Exit (click.exceptions.Exit) is how a typer command ends with a status.
    (typer.Exit, CLI_ONLY),
    # pydantic catches ValueError raised in a validator and turns it into a ValidationError,
    # which the API answers as 422 ``invalid_request``: a MicrofleetError there would escape as itself.
    (ValueError, IN_PYDANTIC_VALIDATOR),
    # A bad option value: click prints the usage line and the reason and exits 2.
    (typer.BadParameter, CLI_ONLY),
    # The demo turns SIGTERM into Ctrl-C so its broker and bridge are stopped, not orphaned.
    (KeyboardInterrupt, CLI_ONLY),
    # A car refuses a command with the reason; a malformed command result is a ValueError to its reader.
    (CommandRefused, EMBEDDABLE),
    (ValueError, EMBEDDABLE),
]
# A bare ``raise`` (and ``raise exc`` of the name an ``except ... as exc`` bound) re-raises what was
# caught; whatever it is was raised elsewhere, and checked there if it was raised in src.
_VALIDATORS = {"field_validator", "model_validator"}


@dataclass
class Raise:
    """One ``raise`` statement in src/microfleet."""

    path: Path
    line: int
    text: str
    raised: type[BaseException] | None  # None: a re-raise of what an ``except`` caught
    in_cli: bool
    in_validator: bool

    def __str__(self) -> str:
        return f"{self.path.relative_to(_SRC.parent)}:{self.line}: {self.text}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(_SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _bindings(tree: ast.Module, module: str, is_package: bool) -> dict[str, tuple[str, str | None]]:
    """Name bound by any import in the file -> (module, attribute or None for the module itself)."""
    bound: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = (top, None)
        elif isinstance(node, ast.ImportFrom):
            package = module if is_package else module.rpartition(".")[0]
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                bound[alias.asname or alias.name] = (source, alias.name)
    return bound


def _resolve(expr: ast.expr, bound: dict[str, tuple[str, str | None]], tree: ast.Module, module: str) -> Any:
    if isinstance(expr, ast.Attribute):
        return getattr(_resolve(expr.value, bound, tree, module), expr.attr)
    if not isinstance(expr, ast.Name):
        raise LookupError(f"cannot tell what {ast.unparse(expr)} raises")
    if expr.id in bound:
        source, attribute = bound[expr.id]
        if attribute is None:
            return importlib.import_module(source)
        owner = importlib.import_module(source)
        if hasattr(owner, attribute):
            return getattr(owner, attribute)
        return importlib.import_module(f"{source}.{attribute}")
    defined_here = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    if expr.id in defined_here:
        return getattr(importlib.import_module(module), expr.id)
    if hasattr(builtins, expr.id):
        return getattr(builtins, expr.id)
    raise LookupError(f"{expr.id} is neither imported, defined in the module, nor a builtin")


def _decorator_name(decorator: ast.expr) -> str:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def _raises_in(path: Path) -> list[Raise]:
    return _raises_in_source(path.read_text(encoding="utf-8"), path)


def _raises_in_source(source: str, path: Path) -> list[Raise]:
    """Every ``raise`` in ``source``, judged as the module at ``path`` under src/microfleet."""
    tree = ast.parse(source, filename=str(path))
    module = _module_name(path)
    bound = _bindings(tree, module, path.name == "__init__.py")
    in_cli = module in {"microfleet.cli", "microfleet.__main__"} or module.startswith("microfleet.cli.")
    found: list[Raise] = []

    def visit(
        node: ast.AST, functions: list[ast.FunctionDef | ast.AsyncFunctionDef], caught: set[str]
    ) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions = [*functions, node]
        if isinstance(node, ast.ExceptHandler) and node.name:
            caught = caught | {node.name}
        if isinstance(node, ast.Raise):
            in_validator = bool(functions) and any(
                _decorator_name(d) in _VALIDATORS for d in functions[-1].decorator_list
            )
            exc = node.exc
            raised: type[BaseException] | None
            if exc is None or (isinstance(exc, ast.Name) and exc.id in caught):
                raised = None
            else:
                target = exc.func if isinstance(exc, ast.Call) else exc
                try:
                    raised = _resolve(target, bound, tree, module)
                except (LookupError, AttributeError, ImportError) as err:
                    pytest.fail(f"{path}:{node.lineno}: {ast.unparse(node)}: {err}")
                if not (inspect.isclass(raised) and issubclass(raised, BaseException)):
                    pytest.fail(f"{path}:{node.lineno}: {ast.unparse(node)} raises no exception class")
            found.append(Raise(path, node.lineno, ast.unparse(node), raised, in_cli, in_validator))
        for child in ast.iter_child_nodes(node):
            visit(child, functions, caught)

    visit(tree, [], set())
    return found


def _private_signal(r: Raise) -> bool:
    """A decoder's own exception class, defined and caught in the module that raises it, never escapes.

    (The OsmAnd and OVMS decoders stop a field's parsing with one and turn it into a refusal reason.)
    """
    assert r.raised is not None
    if r.raised.__module__ != _module_name(r.path):
        return False
    tree = ast.parse(r.path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.ExceptHandler)
        and isinstance(node.type, ast.Name)
        and node.type.id == r.raised.__name__
        for node in ast.walk(tree)
    )


def _offence(r: Raise) -> str | None:
    """Why this raise is not allowed, or None when it is."""
    if r.raised is None:
        return None
    if r.raised in RAISABLE:
        return None
    if r.raised is MicrofleetError:
        return (
            "raises the bare base: pick the class in the tree that says what went wrong (the API answers 500)"
        )
    if issubclass(r.raised, MicrofleetError):
        return (
            f"raises {r.raised.__module__}.{r.raised.__qualname__}: add it to the tree in microfleet.errors"
        )
    if _private_signal(r):
        return None
    for cls, where in ALLOWED:
        if r.raised is cls and (
            (where == CLI_ONLY and r.in_cli)
            or (where == IN_PYDANTIC_VALIDATOR and r.in_validator)
            or (where == EMBEDDABLE and str(r.path.relative_to(_SRC.parent)) == EMBEDDABLE)
        ):
            return None
    return f"raises {r.raised.__module__}.{r.raised.__qualname__}, which is outside microfleet.errors' tree"


def test_every_deliberate_raise_is_in_the_tree() -> None:
    raises = [r for path in sorted(_SRC.rglob("*.py")) for r in _raises_in(path)]
    assert len(raises) > 50, "the walk found too few raise statements to be looking at src/microfleet"
    offenders = [f"{r}  <- {why}" for r in raises if (why := _offence(r))]
    assert not offenders, "\n".join(offenders)


_SAMPLE = """
import typer
from pydantic import BaseModel, field_validator
from microfleet.errors import NotFoundError
from microfleet import errors

class Model(BaseModel):
    x: int

    @field_validator("x")
    @classmethod
    def _x(cls, x):
        raise ValueError("pydantic makes this a validation error")

def find():
    raise NotFoundError("in the tree")

def find_again():
    raise errors.ConflictError("in the tree")

def parse(text):
    try:
        return int(text)
    except ValueError as exc:
        raise exc

def bad_value():
    raise ValueError("outside a validator")

def bad_exit():
    raise typer.Exit(1)

def bad_runtime():
    raise RuntimeError
"""


@pytest.mark.parametrize(
    ("module", "offending"),
    [
        (
            "services/sample.py",
            ["raise ValueError('outside a validator')", "raise typer.Exit(1)", "raise RuntimeError"],
        ),
        ("cli/sample.py", ["raise ValueError('outside a validator')", "raise RuntimeError"]),
    ],
)
def test_the_walk_tells_offenders_from_allowed_raises(module: str, offending: list[str]) -> None:
    # The walk is only as good as its parsing: the same sample judged as a service and as a CLI module.
    raises = _raises_in_source(_SAMPLE, _SRC / module)
    assert len(raises) == 7
    assert [r.text for r in raises if _offence(r)] == offending


# ---------------------------------------------------------------------------------------------------
# (c) the API answers every error in the tree with a 4xx, or 503 for a store that is away


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    by_name = {cls.__name__: cls for cls in RAISABLE}

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        raise by_name[name](f"a {name} for the test")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("cls", RAISABLE, ids=lambda cls: cls.__name__)
def test_the_api_answers_each_error_with_a_client_status_or_503(
    cls: type[MicrofleetError], client: TestClient
) -> None:
    status = _status_for(cls("x"))
    assert 400 <= status < 500 or status == 503, f"{cls.__name__} -> {status}"

    response = client.get(f"/raise/{cls.__name__}")
    assert response.status_code == status
    assert response.json() == {"code": cls.code, "message": f"a {cls.__name__} for the test"}
    if issubclass(cls, StoreUnavailableError):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    elif issubclass(cls, TooManyRequestsError):
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(cls("x").retry_after_s)
    else:
        assert "Retry-After" not in response.headers
    if issubclass(cls, AuthenticationError):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
