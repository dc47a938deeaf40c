"""Sealing a linked calendar's address and password at rest (AES-256-GCM).

A secret ICS address is as good as the calendar itself (Google's and Outlook's carry
the access token in the path), and a CalDAV password opens the whole account, so
neither is stored in the clear. The key is derived from ``BOOKING_CALENDAR_SECRET_KEY``
with HKDF, so any long random string will do as the setting. Each value is bound to
its calendar and field (the associated data), so a ciphertext copied into another row,
or from the address into the password column, does not open.

Layout of a sealed value: one version byte, the 12-byte nonce, the ciphertext with its
16-byte tag.
"""

from __future__ import annotations

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.settings import Settings

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_INFO = b"booking-service calendar secrets v1"


class CalendarKeyMissing(RuntimeError):
    """No ``BOOKING_CALENDAR_SECRET_KEY`` is configured: calendars cannot be linked."""


class UnreadableSecret(ValueError):
    """The value was sealed with another key, for another calendar, or is damaged."""


class CalendarSecrets:
    """Seals and opens the secrets of linked calendars with the configured key."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> CalendarSecrets:
        if settings.calendar_secret_key is None:
            raise CalendarKeyMissing(
                "BOOKING_CALENDAR_SECRET_KEY is not set; linked calendars cannot be stored"
            )
        return cls(settings.calendar_secret_key.get_secret_value())

    def seal(self, plaintext: str, *, calendar_id: uuid.UUID, field: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _bound_to(calendar_id, field))
        return VERSION + nonce + sealed

    def open(self, sealed: bytes, *, calendar_id: uuid.UUID, field: str) -> str:
        if not sealed.startswith(VERSION) or len(sealed) < 1 + NONCE_BYTES + 16:
            raise UnreadableSecret(f"the calendar's {field} is not in a known sealed form")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, _bound_to(calendar_id, field)).decode()
        except InvalidTag:
            raise UnreadableSecret(
                f"the calendar's {field} cannot be decrypted with the configured key "
                "(was BOOKING_CALENDAR_SECRET_KEY changed?); link the calendar again"
            ) from None


def _bound_to(calendar_id: uuid.UUID, field: str) -> bytes:
    return f"consultant_calendars:{calendar_id}:{field}".encode()
