"""Keep secrets out of everything a run writes.

A name is secret-like when one of its words is TOKEN, KEY, SECRET, PASSWORD, ... (``HF_TOKEN``,
``WANDB_API_KEY``, ``hubToken``), matched by word so that ``early_stop.keys`` stays readable.
Values of secret-like environment variables and config keys are replaced wherever they appear.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***REDACTED***"
SECRET_WORDS = {"token", "key", "apikey", "secret", "password", "passwd", "passphrase", "credential", "credentials"}
# Shorter values ("1", "true") would blank out ordinary text; no real token is this short.
MIN_SECRET_LENGTH = 6
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_name(name: str) -> bool:
    return any(word.lower() in SECRET_WORDS for word in _WORD.findall(name))


class Redactor:
    """Scrubs known secret values, and values under secret-like keys, from text and data."""

    def __init__(self, extra_values: Iterable[str] = ()) -> None:
        env_values = (v for k, v in os.environ.items() if is_secret_name(k))
        values = {v for v in (*env_values, *extra_values) if len(v) >= MIN_SECRET_LENGTH}
        # Longest first so a secret containing another is replaced whole.
        self._values = sorted(values, key=len, reverse=True)

    def add_values(self, values: Iterable[Any]) -> None:
        self._values = sorted(
            {*self._values, *(str(v) for v in values if v is not None and len(str(v)) >= MIN_SECRET_LENGTH)},
            key=len,
            reverse=True,
        )

    def text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        return text

    def override(self, override: str) -> str:
        """``a.b_token=xyz`` -> ``a.b_token=***REDACTED***``; other overrides only lose known values."""
        key, sep, _value = override.partition("=")
        if sep and is_secret_name(key.lstrip("+~").split(".")[-1]):
            return f"{key}={REDACTED}"
        return self.text(override)

    def data(self, data: Any) -> Any:
        """A deep copy of JSON-like data with secret-keyed values and known secret strings replaced."""
        if isinstance(data, Mapping):
            return {k: REDACTED if is_secret_name(str(k)) and v is not None else self.data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.data(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        return data


def secret_values_in(data: Any) -> list[str]:
    """The values found under secret-like keys anywhere in JSON-like data."""
    found: list[str] = []
    if isinstance(data, Mapping):
        for k, v in data.items():
            if is_secret_name(str(k)) and isinstance(v, (str, int, float)):
                found.append(str(v))
            else:
                found.extend(secret_values_in(v))
    elif isinstance(data, (list, tuple)):
        for v in data:
            found.extend(secret_values_in(v))
    return found


class RedactingFormatter(logging.Formatter):
    """A log formatter that scrubs secrets from the whole line, tracebacks included."""

    def __init__(self, redactor: Redactor, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.text(super().format(record))
