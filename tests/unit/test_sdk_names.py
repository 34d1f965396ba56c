"""The name class of ledger model versions, against the vectors the chaincode's Go test reads too."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from modelledger.sdk.registry.names import (
    FORMAT_CHARS,
    InvalidNameError,
    check_model_name,
    check_model_version,
    is_format_char,
    is_space_char,
    name_rule_broken,
)

VECTORS = Path(__file__).resolve().parents[2] / "chaincode" / "registry" / "testdata" / "name_vectors.json"


def _vectors() -> dict[str, Any]:
    return dict(json.loads(VECTORS.read_text(encoding="utf-8")))


def test_every_name_vector_gets_the_chaincodes_answer() -> None:
    names = _vectors()["names"]
    assert len(names) >= 40
    for case in names:
        if not case["error"]:
            assert check_model_name(case["name"]) == case["name"]
            continue
        with pytest.raises(InvalidNameError) as info:
            check_model_name(case["name"])
        assert (info.value.field, info.value.rule) == ("name", case["error"]), repr(case["name"])
        assert str(info.value) == f"name: {case['error']}"


def test_every_version_vector_gets_the_chaincodes_answer() -> None:
    versions = _vectors()["versions"]
    assert len(versions) >= 15
    for case in versions:
        if not case["error"]:
            assert check_model_version(case["version"]) == case["version"]
            continue
        with pytest.raises(InvalidNameError) as info:
            check_model_version(case["version"], "data.version")
        assert str(info.value) == f"data.version: {case['error']}", repr(case["version"])


def test_the_vectors_cover_every_rule_and_the_receivers_old_gaps() -> None:
    v = _vectors()
    rules = {c["error"] for c in v["names"]}
    assert len(rules) == 9  # accepted + 8 rules; "valid UTF-8" cannot be written in JSON that Go reads alike
    names = {c["name"]: c["error"] for c in v["names"]}
    assert names["a/b"] and names["a:b"] and names["fraud\u200b"] and names["\u202efraud"] and names["fraud "]
    assert {c["version"]: c["error"] for c in v["versions"]}["1234567890123456789"]


def test_a_lone_surrogate_is_not_a_name() -> None:
    # JSON can carry one ("\ud800"); Go's decoder turns it into U+FFFD, Python's keeps it.
    assert name_rule_broken("fraud\ud800") == "must be valid UTF-8"


def test_the_format_table_holds_every_cf_character_of_this_python() -> None:
    """Every Cf character of this Python's Unicode is in the table; the table holds nothing assigned to another
    category (it is Unicode 15.0's; an older Python lacks some of its characters)."""
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        category = unicodedata.category(c)
        if category == "Cf":
            assert is_format_char(c), f"U+{code:04X} is Cf in Unicode {unicodedata.unidata_version}"
        elif is_format_char(c):
            assert category == "Cn", f"U+{code:04X} is {category}, not Cf"
    bidi = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    assert all(is_format_char(chr(c)) for c in bidi)
    assert sum(hi - lo + 1 for lo, hi in FORMAT_CHARS) == 170


def test_the_space_table_is_white_space() -> None:
    # str.isspace() is White_Space plus U+001C..U+001F (which are not White_Space).
    spaces = {code for code in range(sys.maxunicode + 1) if chr(code).isspace()} - set(range(0x1C, 0x20))
    assert {code for code in range(sys.maxunicode + 1) if is_space_char(chr(code))} == spaces


@pytest.mark.parametrize(
    ("key", "broken"),
    [
        ("accuracy_score", None),
        ("eval/roc auc:v1.2-x", None),
        ("", "must be 1 to 250"),
        ("k" * 251, "must be 1 to 250"),
        ("bad$key", "must be 1 to 250"),
        ("é", "must be 1 to 250"),
        ("a/../b", "must not resolve to another name"),
        ("a//b", "must not resolve to another name"),
        ("/a", "must not resolve to another name"),
        ("../a", "must not resolve to another name"),
        (".", "must not resolve to another name"),
        ("a/", "must not resolve to another name"),
    ],
)
def test_mlflow_keys_follow_the_chaincodes_rule(key: str, broken: str | None) -> None:
    # chaincode/registry/validation.go validateMLflowKey: the character set and length, then path.Clean(key) == key
    # and not ".", "..*" or "/*".
    from modelledger.sdk.registry.names import mlflow_key_rule_broken

    said = mlflow_key_rule_broken(key)
    assert said == broken if broken is None else (said is not None and said.startswith(broken))
