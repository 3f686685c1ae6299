"""Names, keys and filters: the grammar shared by the client and the server.

A *key* is a dot-separated list of tokens (``orders.eu.7``). A *filter* is a
NATS-style pattern over keys: ``*`` matches exactly one token, ``>`` matches one
or more trailing tokens (``orders.>``, ``orders.*.7``).
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_NAME_LENGTH = 128
MAX_KEY_LENGTH = 255
MAX_KEY_TOKENS = 16

_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_TOKEN = re.compile(r"[a-zA-Z0-9_-]+")


def name_problem(name: object) -> str | None:
    """Return why ``name`` is not a valid stream or consumer name, or None."""
    if not isinstance(name, str):
        return "must be a string"
    if not name:
        return "can't be blank"
    if len(name) > MAX_NAME_LENGTH:
        return f"should be at most {MAX_NAME_LENGTH} character(s)"
    if not _NAME.fullmatch(name):
        return "must contain only letters, digits, '_' and '-'"
    return None


def key_problem(key: object) -> str | None:
    """Return why ``key`` is not a valid message key, or None."""
    if not isinstance(key, str):
        return "must be a string"
    if not key:
        return "can't be blank"
    if len(key) > MAX_KEY_LENGTH:
        return f"should be at most {MAX_KEY_LENGTH} character(s)"
    tokens = key.split(".")
    if len(tokens) > MAX_KEY_TOKENS:
        return f"should have at most {MAX_KEY_TOKENS} tokens"
    for token in tokens:
        if token in ("*", ">"):
            return "must not contain wildcards ('*' or '>')"
        if not _TOKEN.fullmatch(token):
            return "must be dot-separated tokens of letters, digits, '_' and '-'"
    return None


def filter_problem(pattern: object) -> str | None:
    """Return why ``pattern`` is not a valid key filter, or None."""
    if not isinstance(pattern, str):
        return "must be a string"
    if not pattern:
        return "can't be blank"
    if len(pattern) > MAX_KEY_LENGTH:
        return f"should be at most {MAX_KEY_LENGTH} character(s)"
    tokens = pattern.split(".")
    if len(tokens) > MAX_KEY_TOKENS:
        return f"should have at most {MAX_KEY_TOKENS} tokens"
    for i, token in enumerate(tokens):
        if token == ">" and i != len(tokens) - 1:
            return "'>' is only allowed as the last token"
        if token not in ("*", ">") and not _TOKEN.fullmatch(token):
            return "must be dot-separated tokens of letters, digits, '_', '-', '*' or '>'"
    return None


@lru_cache(maxsize=1024)
def _filter_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for token in pattern.split("."):
        if token == "*":
            parts.append(r"[^.]+")
        elif token == ">":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        else:
            parts.append(re.escape(token))
    return re.compile(r"\.".join(parts) + r"\Z")


def matches(pattern: str, key: str) -> bool:
    """True when ``key`` matches the filter ``pattern`` (assumed valid)."""
    if pattern == ">":
        return True
    return _filter_regex(pattern).match(key) is not None
