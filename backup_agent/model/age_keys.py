"""Check the shape of age public keys (ENCRYPT_TO) without loading the age library.

An age X25519 recipient is Bech32 (BIP 173) with the human-readable part "age" and 32 bytes
of key: `age1` and 58 characters, the last six a checksum. Checking it here lets settings
refuse a typo at once, while pyrage loads only in the commands that encrypt or decrypt.
"""

from __future__ import annotations

from backup_agent.model.errors import ConfigurationError

RECIPIENT_PREFIX = "age1"
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
RECIPIENT_DATA_CHARACTERS = 58  # 32 bytes in 5-bit groups (52) and the checksum (6)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def is_valid_recipient(text: str) -> bool:
    """True for a well-formed age X25519 public key (checksum included)."""
    human, _, data = text.rpartition("1")
    if human != "age" or len(data) != RECIPIENT_DATA_CHARACTERS:
        return False
    if any(character not in BECH32_CHARSET for character in data):
        return False
    expanded = [ord(character) >> 5 for character in human] + [0] + \
        [ord(character) & 31 for character in human]
    return _polymod(expanded + [BECH32_CHARSET.index(character) for character in data]) == 1


def parse_recipients(text: str, variable: str = "ENCRYPT_TO") -> tuple[str, ...]:
    """Return the age recipients (public keys) in `text`, separated by commas or spaces."""
    recipients = tuple(text.replace(",", " ").split())
    for recipient in recipients:
        if not recipient.startswith(RECIPIENT_PREFIX):
            raise ConfigurationError(f"{variable}: {recipient[:12]!r}… is not an age public key "
                                     "(age1…): give the recipient, never the secret key")
        if not is_valid_recipient(recipient):
            raise ConfigurationError(f"{variable}: {recipient} is not a valid age public key "
                                     "(a typo? copy it again from the key file's "
                                     "'# public key:' line)")
    return recipients
