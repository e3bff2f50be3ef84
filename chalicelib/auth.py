"""API keys that bind a caller to one ISPB.

A key is 32 random bytes, URL-safe base64, sent as ``Authorization: Bearer <key>``. The
table stores only its SHA-256 hash (``KEY#<hash>``) and the ISPB it grants, so a copy of the
table does not reveal any usable key.
"""

import hashlib
import secrets

from chalicelib.errors import AccessDenied, InvalidIspb, Unauthenticated
from chalicelib.messages import is_valid_ispb
from chalicelib.store import PixStore

KEY_BYTES = 32
BEARER_SCHEME = "bearer"
# Longer headers cannot carry a key that issue_key made; they are rejected without a lookup.
MAX_AUTHORIZATION_LENGTH = 256


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization or len(authorization) > MAX_AUTHORIZATION_LENGTH:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != BEARER_SCHEME or not token or not token.isascii():
        return None
    return token


def issue_key(store: PixStore, ispb: str) -> str:
    """Create a key for `ispb`, store its hash, and return the key itself (shown only once)."""
    if not is_valid_ispb(ispb):
        raise InvalidIspb(ispb)
    while True:
        key = secrets.token_urlsafe(KEY_BYTES)
        # A collision of 256-bit random keys does not happen in practice; the conditional
        # write makes sure it could never overwrite another ISPB's key anyway.
        if store.put_api_key(hash_key(key), ispb):
            return key


def authenticate(store: PixStore, authorization: str | None) -> str | None:
    """Return the ISPB that the request's API key grants, or None for a missing or unknown key."""
    token = bearer_token(authorization)
    if token is None:
        return None
    return store.ispb_for_api_key(hash_key(token))


def check_access(granted_ispb: str | None, ispb: str) -> None:
    """Raise `Unauthenticated` without a known key, `AccessDenied` for another ISPB's path."""
    if not granted_ispb:
        raise Unauthenticated()
    if granted_ispb != ispb:
        raise AccessDenied(ispb)
