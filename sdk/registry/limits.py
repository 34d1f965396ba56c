"""The registry chaincode's limits, read from the one file the chaincode's constants are written to.

``limits.json`` (beside this module, package data) is written from the Go
constants of ``chaincode/registry`` by ``chaincode/registry/limits_test.go``,
which fails when the file differs from them. Every Python part that must keep
to a limit of the ledger reads it from :data:`LIMITS`: the name class
(:mod:`modelledger.sdk.registry.names`), the bridge's webhook checks and
provenance caps, the store's manifest path limit, the data scientists'
dataset source, the CLI's page size. Lengths in characters are Unicode code
points (the chaincode counts runes).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class LedgerLimits:
    """The chaincode's limits (CONTRACT.md "Limits"); each field is a key of ``limits.json``, in camelCase there."""

    model_name_chars: int
    version_digits: int
    environment_chars: int
    manifest_files: int
    params: int
    metrics: int
    libraries: int
    datasets: int
    manifest_path_chars: int
    file_size: int
    mlflow_key_chars: int
    param_value_chars: int
    label_chars: int
    uri_chars: int
    storage_key_chars: int
    schema_summary_chars: int
    note_chars: int
    msp_id_chars: int
    approval_orgs: int
    page_size: int
    deployment_environments: int
    argument_bytes: int
    number_chars: int
    thresholds: int
    required_passes: int
    evaluations: int
    org_evaluations: int
    evaluation_metrics: int


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_limits(text: str) -> LedgerLimits:
    """The limits of a ``limits.json`` text.

    Raises:
        ValueError: The text is not such a file: a limit missing, one this module does not know, or not
            a positive integer (the Python side must know every limit the chaincode has, and no other).
    """
    doc: Any = json.loads(text)
    given = doc.get("limits") if isinstance(doc, dict) else None
    if not isinstance(given, dict):
        raise ValueError("limits.json: no 'limits' object")
    fields = {_camel(f.name): f.name for f in dataclasses.fields(LedgerLimits)}
    missing, unknown = sorted(set(fields) - set(given)), sorted(set(given) - set(fields))
    if missing or unknown:
        raise ValueError(f"limits.json: missing {missing}, unknown {unknown} (update sdk/registry/limits.py)")
    bad = sorted(k for k, v in given.items() if type(v) is not int or v < 1)
    if bad:
        raise ValueError(f"limits.json: not positive integers: {bad}")
    return LedgerLimits(**{fields[k]: v for k, v in given.items()})


LIMITS = parse_limits(files(__package__).joinpath("limits.json").read_text(encoding="utf-8"))
"""The chaincode's limits."""
