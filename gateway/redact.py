"""Secrets the process has read (passwords, tokens) are masked in every log line it writes.

A library logging at debug level may print what it sends (asyncua logs its ActivateSessionRequest,
whose password is plain text on an endpoint without security; httpx logs request URLs). Every
secret taken from the environment or a file is remembered here, with the forms it takes in a bytes
repr and in a URL, and the process's log formatter replaces each with `***`.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4  # a shorter value would mask innocent text and hides little
_secrets: tuple[str, ...] = ()


def remember(secret: str | None) -> None:
    global _secrets
    if not secret or len(secret) < MIN_LENGTH:
        return
    forms = {secret, repr(secret.encode())[2:-1], quote(secret, safe=""), quote_plus(secret)}
    _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))  # longest first


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFormatter(logging.Formatter):
    """The whole line, traceback included, with every remembered secret masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def redact_handlers(logger: logging.Logger, fmt: str) -> None:
    for handler in logger.handlers:
        handler.setFormatter(RedactingFormatter(fmt))
