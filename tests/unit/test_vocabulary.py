"""One vocabulary: the ledger's statuses and the bridge's outcomes mean in the docs what they mean in code.

The words and meanings live once in code (``sdk/registry/statuses.py`` for
the ledger, ``mlops/bridge/tags.py`` for the bridge); the chaincode's Go
constants are what the ledger stores; docs/guarantees.md ("Vocabulary") and
docs/bridge.md's table of ``ledger.status`` values must say the same.
"""

from __future__ import annotations

import re
from pathlib import Path

from modelledger.mlops.bridge import tags
from modelledger.sdk.registry import statuses

ROOT = Path(__file__).resolve().parents[2]
RECORDS_GO = ROOT / "chaincode" / "registry" / "records.go"
GUARANTEES = ROOT / "docs" / "guarantees.md"
BRIDGE = ROOT / "docs" / "bridge.md"


def go_constants(prefix: str) -> set[str]:
    """The values of records.go's string constants named ``<prefix>...`` (``Status``: a version's statuses)."""
    return set(re.findall(rf'^\s*{prefix}[A-Z]\w*\s*=\s*"([A-Z_]+)"', RECORDS_GO.read_text(), re.M))


def table_rows(doc: str, heading: str) -> dict[str, list[str]]:
    """The rows of the first table after the line ``heading``: first cell -> the other cells, backticks removed."""
    rows: dict[str, list[str]] = {}
    started = False
    for line in doc.split(f"{heading}\n", 1)[1].splitlines():
        if not line.startswith("|"):
            if started:
                break
            continue
        started = True
        cells = [c.strip().replace("`", "") for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-"} or cells[0] == "word":  # the separator, the header
            continue
        rows[cells[0]] = cells[1:]
    return rows


def vocabulary() -> dict[str, list[str]]:
    """docs/guarantees.md's Vocabulary table: word -> [where it appears, what it means]."""
    return table_rows(GUARANTEES.read_text(), "## Vocabulary")


def test_the_sdk_words_cover_every_status_and_decision_the_chaincode_stores() -> None:
    go_statuses, go_decisions = go_constants("Status"), go_constants("Decision")
    assert go_statuses == {"REGISTERED", "APPROVED", "REJECTED", "DEPLOYED", "REVOKED"}  # the parse found them
    assert go_decisions == {"APPROVED", "REJECTED"}
    assert set(statuses.STATUSES) == go_statuses and set(statuses.DECISIONS) == go_decisions
    for stored, wording in {**statuses.STATUSES, **statuses.DECISIONS}.items():
        assert wording.word == stored.lower() and wording.meaning and not wording.meaning.endswith(".")
    assert all(statuses.status_word(s) == w.word for s, w in statuses.STATUSES.items())
    assert all(statuses.decision_word(d) == w.word for d, w in statuses.DECISIONS.items())


def test_the_sdk_words_cover_every_evaluation_result_the_chaincode_stores() -> None:
    """Until the chaincode of contract 1.4.0 is merged, records.go has no Evaluation constants and this fails."""
    assert go_constants("Evaluation") == set(statuses.RESULTS) == {"PASSED", "FAILED", "NO_POLICY"}
    for stored, wording in statuses.RESULTS.items():
        assert wording.word == stored.lower().replace("_", " ") and not wording.meaning.endswith(".")
        assert statuses.result_word(stored) == wording.word and statuses.result_meaning(stored) == wording.meaning
    assert statuses.result_word("SKIPPED") == "SKIPPED" and "does not know (SKIPPED)" in statuses.result_meaning("SKIPPED")


def test_the_evaluation_results_table_says_what_the_code_says() -> None:
    table = table_rows(GUARANTEES.read_text(), "### Evaluation results")
    assert table == {w.word: [stored, w.meaning] for stored, w in statuses.RESULTS.items()}


def vocabulary_differences(table: dict[str, list[str]]) -> list[str]:
    """What the Vocabulary table says otherwise than the code: one line per word."""
    out = []
    ledger = {w.word: (stored, w.meaning) for stored, w in statuses.STATUSES.items()}
    expected = {word: (f"ledger status {stored}", meaning) for word, (stored, meaning) in ledger.items()}
    expected |= {word: (f"MLflow tag {tags.TAG_STATUS}", meaning) for word, meaning in tags.ANCHORING.items()}
    out += [f"{word}: not in the code" for word in sorted(set(table) - set(expected))]
    for word, (place, meaning) in expected.items():
        if word not in table:
            out.append(f"{word}: not in the table")
            continue
        where, said = table[word]
        if place not in where:
            out.append(f"{word}: appears in {where!r}, which does not say {place!r}")
        if said != meaning:
            out.append(f"{word}: the table says {said!r}, the code {meaning!r}")
    # The ledger's words the bridge's tag takes once the version is anchored (``anchored`` stands for registered).
    mirrored = {w for w in tags.LEDGER_STATUS_TAGS.values() if w not in tags.ANCHORING}
    out += [
        f"{word}: appears in {table[word][0]!r}, which does not say MLflow tag {tags.TAG_STATUS}"
        for word in sorted(mirrored & set(table))
        if f"MLflow tag {tags.TAG_STATUS}" not in table[word][0]
    ]
    return out


def test_the_vocabulary_table_says_what_the_code_says() -> None:
    assert vocabulary_differences(vocabulary()) == []


def test_a_table_that_differs_from_the_code_is_caught() -> None:
    table = vocabulary()
    table["registered"] = [table["registered"][0], "on the ledger"]
    del table["anchored"]
    table["verified"] = ["the CLI", "all checks hold"]
    assert vocabulary_differences(table) == [
        "verified: not in the code",
        f"registered: the table says 'on the ledger', the code {statuses.STATUSES['REGISTERED'].meaning!r}",
        "anchored: not in the table",
    ]


def test_the_bridge_docs_table_of_ledger_status_values_says_what_the_code_says() -> None:
    rows = table_rows(BRIDGE.read_text(), "| status (constant) | what it means |")
    constants = {v: k for k, v in vars(tags).items() if k.startswith("STATUS_")}
    assert {cell: said for cell, (said,) in rows.items()} == {
        f"{value} ({constants[value]})": meaning for value, meaning in tags.ANCHORING.items()
    }


def test_the_bridges_states_are_its_own_words_not_the_ledgers() -> None:
    assert set(tags.ANCHORING) == {v for k, v in vars(tags).items() if k.startswith("STATUS_")}
    assert not set(tags.ANCHORING) & {w.word for w in statuses.STATUSES.values()}


def test_once_anchored_the_status_tag_takes_the_ledgers_word_for_every_ledger_status() -> None:
    assert set(tags.LEDGER_STATUS_TAGS) == set(statuses.STATUSES)
    assert tags.LEDGER_STATUS_TAGS[statuses.REGISTERED] == tags.STATUS_ANCHORED
    assert all(
        tags.status_tag(stored) == wording.word
        for stored, wording in statuses.STATUSES.items()
        if stored != statuses.REGISTERED
    )
    assert tags.status_tag("SUSPENDED") == "suspended"  # a newer chaincode's status is shown, not hidden


def test_a_ledger_word_whose_row_does_not_name_the_status_tag_is_caught() -> None:
    table = vocabulary()
    table["approved"] = ["ledger status APPROVED", table["approved"][1]]
    assert vocabulary_differences(table) == [
        f"approved: appears in 'ledger status APPROVED', which does not say MLflow tag {tags.TAG_STATUS}"
    ]
