"""A time zone named by a client: an IANA name, or a refusal that names it."""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microfleet.errors import InvalidInputError

IANA_NAME_MAX_CHARS: Final = 64  # the longest IANA names are ~30 characters


def iana_zone(name: str) -> ZoneInfo:
    """The zone, or :class:`InvalidInputError` ("unknown time zone ...").

    A long name is refused before it reaches the file system, where ``ZoneInfo`` would raise ``OSError``.
    """
    if len(name) > IANA_NAME_MAX_CHARS:
        raise InvalidInputError(
            f"unknown time zone: IANA names (Asia/Shanghai) are at most {IANA_NAME_MAX_CHARS} characters"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        refusal = f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
        raise InvalidInputError(refusal) from None
