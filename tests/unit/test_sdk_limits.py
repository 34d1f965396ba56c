"""One source for the chaincode's limits: sdk/registry/limits.json, written from the Go constants (its Go test fails
when they differ), and every Python copy of a limit reads it."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from modelledger.mlops.bridge import provenance
from modelledger.mlops.store import digest
from modelledger.sdk.registry import names
from modelledger.sdk.registry.limits import LIMITS, parse_limits

TEXT = files("modelledger.sdk.registry").joinpath("limits.json").read_text(encoding="utf-8")
FILE = json.loads(TEXT)["limits"]


def test_the_limits_are_the_chaincodes() -> None:
    assert (FILE["modelNameChars"], FILE["versionDigits"], FILE["params"], FILE["manifestFiles"]) == (256, 10, 1000, 10000)
    assert parse_limits(TEXT) == LIMITS and LIMITS.uri_chars == FILE["uriChars"]


def test_every_python_copy_reads_the_one_file() -> None:
    assert FILE["modelNameChars"] == names.MAX_NAME_CHARS
    assert names.VERSION_RULE.endswith(f"at most {LIMITS.version_digits} digits")
    assert names.name_rule_broken("n" * LIMITS.model_name_chars) is None
    assert names.name_rule_broken("n" * (LIMITS.model_name_chars + 1)) == "must be at most 256 characters"
    assert names.check_model_version("9" * LIMITS.version_digits)
    with pytest.raises(names.InvalidNameError):
        names.check_model_version("1" * (LIMITS.version_digits + 1))
    caps = (provenance.MAX_PARAMS, provenance.MAX_METRICS, provenance.MAX_LIBRARIES, provenance.MAX_DATASETS)
    assert caps == (FILE["params"], FILE["metrics"], FILE["libraries"], FILE["datasets"])
    assert (FILE["paramValueChars"], FILE["labelChars"]) == (provenance.MAX_PARAM_VALUE, provenance.MAX_LABEL)
    assert FILE["manifestPathChars"] == digest.MAX_PATH_CHARS


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d["limits"].pop("params"), r"missing \['params'\], unknown \[\]"),
        (lambda d: d["limits"].update(tags=50), r"missing \[\], unknown \['tags'\]"),
        (lambda d: d["limits"].update(params="1000"), r"not positive integers: \['params'\]"),
        (lambda d: d["limits"].update(params=0), r"not positive integers: \['params'\]"),
        (lambda d: d.pop("limits"), "no 'limits' object"),
    ],
)
def test_a_limits_file_that_is_not_the_chaincodes_is_refused(edit, error: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(TEXT)
    edit(doc)
    with pytest.raises(ValueError, match=error):
        parse_limits(json.dumps(doc))
