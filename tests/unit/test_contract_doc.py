"""chaincode/CONTRACT.md's example of RegisterModelVersion's input names what the store really writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from modelledger.mlops.store.index import index_key
from modelledger.runtime.settings import DEFAULT_S3_BUCKET

CONTRACT = Path(__file__).resolve().parents[2] / "chaincode" / "CONTRACT.md"


def register_example() -> dict:
    text = CONTRACT.read_text(encoding="utf-8")
    block = re.search(r"Input of `RegisterModelVersion`[^\n]*\n\n```json\n(.*?)\n```", text, re.S)
    assert block, "CONTRACT.md has no JSON example of RegisterModelVersion's input"
    return dict(json.loads(block.group(1)))


def test_the_storage_example_is_the_key_the_store_writes() -> None:
    storage = register_example()["storage"]
    assert storage["key"] == index_key("<manifestDigest>")
    assert storage["bucket"] == DEFAULT_S3_BUCKET
    assert sorted(storage) == ["bucket", "key", "sha256", "versionId"]
