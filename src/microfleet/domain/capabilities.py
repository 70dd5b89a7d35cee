"""What each car model can do remotely: a declarative capability table, one row per catalogue platform.

Each entry says how the car carries the action out and where that is known from (a URL) or that it is an
assumption. :func:`check_capability` refuses an action the model cannot do, or a parameter it cannot take,
before anything is stored or sent; docs/commands.md shows the table (:func:`capability_markdown`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from microfleet.domain.command_wire import Action, ParamValue
from microfleet.domain.commands import PARAMS, check_params
from microfleet.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Capability:
    """One action a model supports: how the car carries it out, and where that is known from."""

    action: Action
    how: str
    source: str  # a URL, or "assumption: ..." where no maker or project source was found
    params: frozenset[str] = frozenset()  # the parameters this model takes for the action


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """The actions of one platform (its catalogue models share a body, electrics and app)."""

    platform: str
    models: tuple[str, ...]
    capabilities: tuple[Capability, ...]
    note: str

    def find(self, action: Action) -> Capability | None:
        """The capability for ``action``, or None if the model cannot do it."""
        return next((c for c in self.capabilities if c.action is action), None)


_OVMS_TWIZY = "https://docs.openvehicles.com/en/latest/components/vehicle_renaulttwizy/docs/commands.html"
_OVMS_TWIZY_CFG = (
    "https://docs.openvehicles.com/en/latest/components/vehicle_renaulttwizy/docs/configuration.html"
)
_MY_DACIA = (
    "https://elespanol.com/elandroidelibre/aplicaciones/20230813/"
    "puedo-controlar-dacia-spring-movil-cargar-coche-usar-aire-acondicionado/783421962_0.amp.html"
)
# Car-sharing fleets fit an aftermarket box wired to central locking, horn and lights (docs/commands.md).
_BOX = "assumption: a sharing box"
# The Abarth 500e's manual (the 2020 Fiat 500e's platform): climate started on demand from the app.
_ABARTH_500E = "https://www.easymanua.ls/abarth/500e/manual?p=69"


def _box(*actions: Action) -> tuple[Capability, ...]:
    hows = {
        Action.LOCK: "the box drives the central locking",
        Action.UNLOCK: "the box drives the central locking",
        Action.LOCATE: "the box flashes the indicators and sounds the horn",
        Action.WAKE: "the box wakes and reports at once",
    }
    return tuple(Capability(a, hows[a], _BOX) for a in actions)


_SHARED_BOX = _box(Action.LOCK, Action.UNLOCK, Action.LOCATE, Action.WAKE)

CAPABILITIES: Final[tuple[ModelCapabilities, ...]] = (
    ModelCapabilities(
        "renault-twizy",
        ("renault-twizy-45", "renault-twizy-80"),
        (
            Capability(
                Action.LOCK,
                "speed lock: OVMS limits the drive to walking pace (the Twizy has no door locks)",
                _OVMS_TWIZY,
            ),
            Capability(Action.UNLOCK, "lifts the OVMS speed lock", _OVMS_TWIZY),
            Capability(Action.CHARGE_STOP, "OVMS 'charge stop'", _OVMS_TWIZY),
            Capability(
                Action.SET_CHARGE_LIMIT,
                "OVMS sufficient-SOC charge attribute ('xrt ca <soc>%') with charge mode 'stop'",
                _OVMS_TWIZY_CFG,
                frozenset({"limit_pct"}),
            ),
            Capability(Action.WAKE, "the OVMS module reports at once", _OVMS_TWIZY),
        ),
        "no climate system at all; no remote charge start or horn through OVMS (assumption for the last two)",
    ),
    ModelCapabilities(
        "dacia-spring",
        (
            "dacia-spring-45-2021",
            "dacia-spring-65-2023",
            "dacia-spring-65-2024",
            "dacia-spring-45-2024",
            "dacia-spring-70-2025",
            "dacia-spring-100-2025",
        ),
        (
            Capability(
                Action.CLIMATE_ON,
                "My Dacia remote A/C: runs with the controls as they were left (no target temperature)",
                _MY_DACIA,
            ),
            Capability(Action.CLIMATE_OFF, "My Dacia remote A/C off", _MY_DACIA),
            Capability(Action.CHARGE_START, "resumes a paused charge (My Dacia)", _MY_DACIA),
            Capability(Action.CHARGE_STOP, "pauses the charge (My Dacia)", _MY_DACIA),
            *_SHARED_BOX,
        ),
        "remote climate has no target; lock, unlock, locate and wake through a sharing box (assumption)",
    ),
    ModelCapabilities(
        "citroen-ami",
        ("citroen-ami", "opel-rocks-e", "fiat-topolino"),
        _SHARED_BOX,
        "assumption: the Ami's own app reads data through the phone in its holder and commands nothing; "
        "sharing fleets fit a box; no climate (a fan heater), charging is only plugging in",
    ),
    ModelCapabilities(
        "wuling-hongguang-mini-ev",
        (
            "wuling-hongguang-mini-ev-gen1-9kwh",
            "wuling-hongguang-mini-ev-gen1-14kwh",
            "wuling-hongguang-mini-ev-macaron",
            "wuling-hongguang-mini-ev-gameboy",
            "wuling-hongguang-mini-ev-gen1-27kwh",
            "wuling-hongguang-mini-ev-cabrio",
            "wuling-hongguang-mini-ev-gen2",
        ),
        (
            *_SHARED_BOX,
            Capability(
                Action.CLIMATE_ON,
                "remote A/C through the maker's app, target settable",
                "assumption: Wuling app remote A/C (no maker page read)",
                frozenset({"target_c"}),
            ),
            Capability(
                Action.CLIMATE_OFF, "remote A/C off", "assumption: Wuling app remote A/C (no maker page read)"
            ),
        ),
        "assumption throughout: no maker source on remote functions was found",
    ),
    ModelCapabilities(
        "chery-qq-ice-cream",
        ("chery-qq-ice-cream-10kwh", "chery-qq-ice-cream-14kwh"),
        (
            *_SHARED_BOX,
            Capability(
                Action.CLIMATE_ON,
                "remote A/C through the maker's app, target settable",
                "assumption: Chery app remote A/C (no maker page read)",
                frozenset({"target_c"}),
            ),
            Capability(
                Action.CLIMATE_OFF, "remote A/C off", "assumption: Chery app remote A/C (no maker page read)"
            ),
        ),
        "assumption throughout: no maker source on remote functions was found",
    ),
    ModelCapabilities(
        "baojun-e-series",
        ("baojun-e100", "baojun-e200", "baojun-e300", "baojun-e300-plus", "baojun-yep"),
        _SHARED_BOX,
        "assumption: lock, unlock, locate and wake through a box; remote climate and charging not known",
    ),
    ModelCapabilities(
        "renault-twingo-electric",
        ("renault-twingo-electric", "renault-twingo-e-tech-2026"),
        (
            Capability(
                Action.CLIMATE_ON,
                "My Renault immediate pre-conditioning",
                "https://ch.e-guide.renault.com/fra/Zoe-ph2/FRA_UD61575_2_UA61575001 (same app; assumption "
                "that the Twingo offers it alike)",
            ),
            Capability(Action.CHARGE_START, "My Renault charge start", "assumption: My Renault app"),
            Capability(Action.LOCATE, "My Renault horn and lights", "assumption: My Renault app"),
            Capability(Action.WAKE, "the box reports at once", _BOX),
        ),
        "climate without a target (the car picks ~21 degC); no remote lock through the maker's app",
    ),
    ModelCapabilities(
        "fiat-500e",
        ("fiat-500e-42kwh", "fiat-500e-action-24kwh", "fiat-500e-2013-us"),
        (
            *_SHARED_BOX,
            Capability(
                Action.CLIMATE_ON,
                "on-demand climate from the maker's app (runs 15 min; doors, bonnet, boot closed)",
                f"{_ABARTH_500E} (the 2020 500e's platform; the target and the 2013 car: assumption)",
                frozenset({"target_c"}),
            ),
            Capability(Action.CLIMATE_OFF, "the app's climate off", f"{_ABARTH_500E} (assumption for off)"),
            Capability(Action.CHARGE_START, "Fiat app charge now", "assumption: Fiat / Uconnect app"),
            Capability(Action.CHARGE_STOP, "Fiat app charge stop", "assumption: Fiat / Uconnect app"),
            Capability(
                Action.SET_CHARGE_LIMIT,
                "Fiat app charge level",
                "assumption: Fiat / Uconnect app",
                frozenset({"limit_pct"}),
            ),
        ),
        "the most connected car of the catalogue",
    ),
    ModelCapabilities(
        "zhidou-d2",
        ("zhidou-d2", "elaris-pio"),
        _SHARED_BOX,
        "assumption: lock, unlock, locate and wake through a box",
    ),
    ModelCapabilities(
        "quadricycles-without-locks",
        ("estrima-biro-l6e", "estrima-biro-bolt-l7e", "waaijenberg-canta-electric"),
        _box(Action.LOCATE, Action.WAKE),
        "assumption: open or simple bodies without central locking; removable battery (Birò); no climate",
    ),
)

# A vehicle registered without a model, or with one the table does not know: the generic Microfleet box,
# which takes every action and reports 'failed' for what its car cannot do. Microfleet's choice, so that
# self-built cars (and the twin) are commandable; a catalogue model always uses its own row.
GENERIC: Final = ModelCapabilities(
    "generic",
    (),
    tuple(
        Capability(
            a,
            "whatever the car's Microfleet box implements; it reports 'failed' otherwise",
            "assumption: a box speaking Microfleet's command protocol",
            frozenset(rule.name for rule in PARAMS.get(a, ())),
        )
        for a in Action
    ),
    "vehicles without a catalogue model",
)

_BY_MODEL: Final[Mapping[str, ModelCapabilities]] = {m: row for row in CAPABILITIES for m in row.models}


def capabilities_of(model_id: str | None) -> ModelCapabilities:
    """The capability row of a catalogue model; :data:`GENERIC` for none or an unknown one."""
    if model_id is None:
        return GENERIC
    return _BY_MODEL.get(model_id, GENERIC)


def check_capability(
    model_id: str | None, action: Action, params: Mapping[str, object]
) -> dict[str, ParamValue]:
    """The checked parameters, or :class:`InvalidInputError` if the model cannot do this (as asked)."""
    row = capabilities_of(model_id)
    capability = row.find(action)
    if capability is None:
        supported = ", ".join(c.action.value for c in row.capabilities) or "none"
        raise InvalidInputError(
            f"a {model_id} cannot {action.value} remotely ({row.note}); it supports: {supported}"
        )
    checked = check_params(action, params)
    extra = sorted(set(checked) - capability.params)
    if extra:
        raise InvalidInputError(
            f"a {model_id} cannot take {', '.join(extra)} for {action.value}: {capability.how}"
        )
    return checked


def capability_markdown() -> str:
    """The capability table as docs/commands.md shows it (a test keeps the page equal to this)."""
    lines = ["| platform | models | actions: how (source) | note |", "|---|---|---|---|"]
    for row in (*CAPABILITIES, GENERIC):
        actions = "<br>".join(
            f"`{c.action.value}`"
            + (f" ({', '.join(sorted(c.params))})" if c.params else "")
            + f": {c.how} ({_source_text(c.source)})"
            for c in row.capabilities
        )
        models = ", ".join(row.models) or "none or not in the catalogue"
        lines.append(f"| `{row.platform}` | {models} | {actions} | {row.note} |")
    return "\n".join(lines) + "\n"


def _source_text(source: str) -> str:
    if source.startswith("https://"):
        url, _, rest = source.partition(" ")
        return f"[source]({url}){' ' + rest if rest else ''}"
    return source
