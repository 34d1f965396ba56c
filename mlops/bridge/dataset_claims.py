"""The run's training datasets on the ledger: this organisation's claim on each, made before the model's record.

The model's record references its datasets by digest; the chaincode marks a
reference ``registered`` only if this organisation's claim on that digest
says the same name and source. The claims are made while the files upload.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from modelledger.mlops.bridge.provenance import ledger_datasets
from modelledger.sdk.registry.client import Conflict, RegistryClient
from modelledger.sdk.registry.records import DatasetRef

# The anchoring job's logger, as when this was part of anchor.py: its log lines keep their logger name
# (operators filter on it; tests/unit/test_bridge_anchor.py listens on it).
log = logging.getLogger("modelledger.bridge.anchor")


def register_datasets(registry: RegistryClient, run: Any | None) -> list[str]:
    """Registers the run's datasets, in parallel; the model's record references them, so they go first.

    Returns:
        Notes for the version's ``ledger.note`` tag: datasets this organisation claimed before with
        another description.
    """
    datasets = ledger_datasets(run)
    if not datasets:
        return []
    with ThreadPoolExecutor(min(8, len(datasets)), thread_name_prefix="dataset") as pool:
        return [note for note in pool.map(partial(register_dataset, registry), datasets) if note]


def register_dataset(registry: RegistryClient, ds: DatasetRef) -> str:
    """Records this organisation's claim on one of the run's datasets.

    Every organisation has its own claim on a sha256 (chaincode 1.3.0), so an
    identical claim returns at once and a ``Conflict`` means that this
    organisation claimed the sha256 before with another name, source or schema
    summary (the chaincode's message names them). That earlier claim stands:
    the model's record references the dataset by digest with the run's name
    and source, and the chaincode marks that reference ``registered`` only if
    the claim says the same (so here it is flagged ``registered: false``, and
    refused while ``strictDatasets`` is on). The differing description is
    logged as a warning and returned as a note (the version's ``ledger.note``
    tag).
    """
    try:
        registry.register_dataset(ds.name, ds.sha256, ds.source)
    except Conflict as exc:
        log.warning(
            "dataset claimed before with another description",
            extra={"sha256": ds.sha256, "dataset": ds.name, "source": ds.source, "reason": exc.message},
        )
        return f"dataset {ds.name} (sha256 {ds.sha256}) was claimed before with another description: {exc.message}"
    return ""
