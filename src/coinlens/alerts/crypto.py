"""Channel URLs hold tokens and passwords: they are stored Fernet-encrypted, never in clear.

The Fernet key is derived (HKDF-SHA256, fixed context) from the server secret, so rotating
`COINLENS_SECRET` makes stored channel URLs unreadable: rules must then be re-created.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coinlens.domain.errors import ConfigError

_CONTEXT = b"coinlens alerts channel-url encryption v1"


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: str, plaintext: str) -> str:
    """Encrypt `plaintext` (a channel URL) with the key derived from `secret`."""
    return _fernet(secret).encrypt(plaintext.encode()).decode("ascii")


def decrypt(secret: str, token: str) -> str:
    """Decrypt a stored channel URL; a key mismatch is a configuration error."""
    try:
        return _fernet(secret).decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise ConfigError(
            "cannot decrypt a stored alert channel: was COINLENS_SECRET changed?"
        ) from exc
