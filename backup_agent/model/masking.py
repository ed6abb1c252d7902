"""Secrets never leave in output: every known secret, wherever it appears, becomes ****."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MASK = "****"


def masked(value: Any, secrets: Sequence[str]) -> Any:
    """Return `value` (text, or JSON-like data) with each of `secrets` replaced by MASK.

    Give `secrets` longest first, so a secret that contains another is masked whole."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {key: masked(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item, secrets) for item in value]
    return value
