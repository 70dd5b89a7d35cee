"""The key-encryption key's file: read it, or make it once (mode 0600) when it does not exist yet."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from microfleet.errors import ConfigurationError

KEY_FILE_NAME = "command-key-encryption.key"


def default_key_path() -> Path:
    """``$XDG_STATE_HOME/microfleet/`` (``~/.local/state/microfleet/`` without it), per the XDG spec."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "microfleet" / KEY_FILE_NAME


def load_or_create_key(path: Path, size_bytes: int = 32) -> bytes:
    """The key in ``path`` (base64 text); a new random one written there first if the file is missing.

    The new file is written aside and linked into place, so two processes starting at once agree on one
    key and neither reads a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.b64encode(secrets.token_bytes(size_bytes)).decode("ascii") + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            temporary.unlink()
    try:
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (OSError, UnicodeDecodeError, binascii.Error) as exc:
        raise ConfigurationError(
            f"cannot read the command key-encryption key {path}: {exc} "
            "(MICROFLEET_COMMAND_KEY_ENCRYPTION_KEY_PATH)"
        ) from None
    if len(key) != size_bytes:
        raise ConfigurationError(f"{path} must hold {size_bytes} bytes in base64, not {len(key)}")
    return key
