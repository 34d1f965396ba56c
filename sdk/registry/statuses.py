"""A model version's statuses, an organisation's decisions and an evaluation's results on the ledger, in words
people read.

The ledger stores the uppercase values of ``chaincode/registry/records.go``
(``REGISTERED``, ...): records on existing ledgers hold them and ``--json``
prints them as stored, so they never change. What people read is the
lowercase word and its one-sentence meaning, defined here once: the CLI, the
demo and verification print them, and docs/guarantees.md ("Vocabulary")
lists them, the results in their own table ("Evaluation results": "failed" is also a word of the bridge's)
(``tests/unit/test_vocabulary.py`` keeps the three equal).
"""

from __future__ import annotations

from dataclasses import dataclass

REGISTERED = "REGISTERED"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
DEPLOYED = "DEPLOYED"
REVOKED = "REVOKED"

PASSED = "PASSED"
FAILED = "FAILED"
NO_POLICY = "NO_POLICY"


@dataclass(frozen=True)
class Wording:
    """How a stored value reads.

    Attributes:
        word: The lowercase word printed for people.
        meaning: What it means, in one sentence.
    """

    word: str
    meaning: str


# Status as stored -> its wording, in the order of chaincode/CONTRACT.md ("Status").
STATUSES: dict[str, Wording] = {
    REGISTERED: Wording("registered", "recorded on the ledger, endorsed by every organisation; not yet approved"),
    APPROVED: Wording("approved", "every organisation of its approval set approved it; not yet deployed"),
    REJECTED: Wording(
        "rejected", "an organisation of its approval set rejected it; it can be neither approved nor deployed"
    ),
    DEPLOYED: Wording("deployed", "approved, and at least one deployment of it was recorded"),
    REVOKED: Wording("revoked", "withdrawn for good, with a reason; it cannot be deployed and it fails verification"),
}

# An organisation's decision on a version, as stored -> its wording.
DECISIONS: dict[str, Wording] = {
    APPROVED: Wording("approved", "this organisation approved the version"),
    REJECTED: Wording("rejected", "this organisation rejected the version"),
}

# An evaluation's result, as stored (chaincode/CONTRACT.md, RecordEvaluation) -> its wording.
RESULTS: dict[str, Wording] = {
    PASSED: Wording(
        "passed",
        "every threshold of the model's policy held; it counts towards the passing evaluations "
        "that policy version requires",
    ),
    FAILED: Wording(
        "failed",
        "a metric the model's policy bounds was missing or outside its bounds (its failures say which); "
        "it does not count",
    ),
    NO_POLICY: Wording(
        "no policy",
        "the model had no policy when it was recorded; it counts towards no policy set later",
    ),
}


def status_word(status: str) -> str:
    """The word for a stored status (``REGISTERED`` -> ``registered``).

    A status this release does not know (a newer chaincode's) is printed as stored, so nothing is hidden.
    """
    known = STATUSES.get(status)
    if known:
        return known.word
    return status or "(none)"


def status_meaning(status: str) -> str:
    """The one-sentence meaning of a stored status, or why there is none."""
    known = STATUSES.get(status)
    if known:
        return known.meaning
    return f"a status this release of modelledger does not know ({status or 'none'}): a newer chaincode's?"


def decision_word(decision: str) -> str:
    """The word for a stored decision (``APPROVED`` -> ``approved``); an unknown one as stored."""
    known = DECISIONS.get(decision)
    return known.word if known else decision or "(none)"


def result_word(result: str) -> str:
    """The word for a stored evaluation result (``NO_POLICY`` -> ``no policy``); an unknown one as stored."""
    known = RESULTS.get(result)
    return known.word if known else result or "(none)"


def result_meaning(result: str) -> str:
    """The one-sentence meaning of a stored evaluation result, or why there is none."""
    known = RESULTS.get(result)
    if known:
        return known.meaning
    return f"a result this release of modelledger does not know ({result or 'none'}): a newer chaincode's?"
