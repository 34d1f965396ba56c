"""The name class of ledger model versions: which model names and versions the registry chaincode accepts.

This is the Python copy of the chaincode's rule (``validateNewModelName`` and
``validateVersion`` in ``chaincode/registry/validation.go``), written once
for every Python part that must refuse early what the ledger would refuse
later: the bridge's webhook receiver (before anything is enqueued), its
anchoring worker and provenance (before anything is downloaded, stored or
signed). ``chaincode/registry/testdata/name_vectors.json`` lists accepted
and refused names and versions with the exact rule each breaks; the Go and
the Python tests both read it, so the two copies cannot drift apart.

A model name is refused, first rule first, when it:

1. is not valid Unicode text (holds a lone surrogate, which UTF-8 cannot carry);
2. is blank: empty, or only White_Space characters;
3. is longer than 256 characters;
4. holds ``/`` or ``:`` (MLflow's rule);
5. holds a control character (Unicode Cc);
6. holds U+10FFFF;
7. is ``.`` or starts with ``..``;
8. holds a Unicode format character (Cf of Unicode 15.0: bidi controls,
   zero-width characters, soft hyphen, tags…);
9. starts or ends with a White_Space character.

A version is a positive decimal integer without leading zeros, at most 10
digits. The numbers (256 characters, 10 digits) are the chaincode's, read from
:data:`modelledger.sdk.registry.limits.LIMITS`. The character tables are written out, not taken from
:mod:`unicodedata`, so the answer does not depend on the Python release
(nor the chaincode's on the Go release).
"""

from __future__ import annotations

import posixpath
import re

from modelledger.sdk.registry.limits import LIMITS

MAX_NAME_CHARS = LIMITS.model_name_chars

VERSION_RULE = f"must be a positive decimal integer without leading zeros, at most {LIMITS.version_digits} digits"

_VERSION = re.compile(rf"[1-9][0-9]{{0,{LIMITS.version_digits - 1}}}")

# Unicode format characters (category Cf) of Unicode 15.0, as inclusive ranges; the bidi controls
# (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) are among them.
FORMAT_CHARS: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)  # fmt: skip

# The Unicode White_Space property (a stable set), its controls included.
SPACE_CHARS: tuple[tuple[int, int], ...] = (
    (0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip


class InvalidNameError(ValueError):
    """A model name or version outside the ledger's name class; ``field`` and ``rule`` say which and why."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def _in(c: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(c)
    return any(lo <= code <= hi for lo, hi in ranges)


def is_format_char(c: str) -> bool:
    """Whether ``c`` is a Unicode format character (Cf of Unicode 15.0)."""
    return _in(c, FORMAT_CHARS)


def is_space_char(c: str) -> bool:
    """Whether ``c`` has the Unicode White_Space property."""
    return _in(c, SPACE_CHARS)


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0


def name_rule_broken(name: str) -> str | None:
    """The first rule of the name class that ``name`` breaks (the chaincode's wording), or None."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        return "must be valid UTF-8"
    if all(is_space_char(c) for c in name):
        return "must not be blank"
    if len(name) > MAX_NAME_CHARS:
        return f"must be at most {MAX_NAME_CHARS} characters"
    if "/" in name or ":" in name:
        return "must not contain '/' or ':'"
    if any(_is_control(c) for c in name):
        return "must not contain control characters"
    if "\U0010ffff" in name:
        return "must not contain U+10FFFF"
    if name == "." or name.startswith(".."):
        return "must not be '.' or start with '..'"
    if any(is_format_char(c) for c in name):
        return "must not contain Unicode format characters (Cf: bidi controls, zero-width characters)"
    if is_space_char(name[0]) or is_space_char(name[-1]):
        return "must not start or end with a space"
    return None


# The characters of an MLflow param or metric key, as the chaincode allows them (validateMLflowKey).
_MLFLOW_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./: ")
MLFLOW_KEY_RULE = (
    f"must be 1 to {LIMITS.mlflow_key_chars} characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"
)


def mlflow_key_rule_broken(key: str) -> str | None:
    """The rule of MLflow's param and metric keys that ``key`` breaks (the chaincode's wording), or None."""
    if not 1 <= len(key) <= LIMITS.mlflow_key_chars or any(c not in _MLFLOW_KEY_CHARS for c in key):
        return MLFLOW_KEY_RULE
    clean = posixpath.normpath(key)
    if clean != key or clean == "." or clean.startswith("..") or clean.startswith("/"):
        return "must not resolve to another name when read as a path"
    return None


def check_model_name(name: str, field: str = "name") -> str:
    """Returns ``name`` if the ledger accepts it as a model name.

    Args:
        name: The model name (MLflow's registered model name).
        field: What to call it in the error, e.g. ``data.name`` for a webhook payload.

    Raises:
        InvalidNameError: The first rule (see the module docstring) the name breaks.
    """
    rule = name_rule_broken(name)
    if rule is not None:
        raise InvalidNameError(field, rule)
    return name


def check_model_version(version: str, field: str = "version") -> str:
    """Returns ``version`` if the ledger accepts it as a model version.

    Raises:
        InvalidNameError: It is not a positive decimal integer without leading zeros of at most 10 digits.
    """
    if not _VERSION.fullmatch(version):
        raise InvalidNameError(field, VERSION_RULE)
    return version
