"""The evaluation gate as the chaincode counts it, for showing where a version stands before anyone approves it.

The chaincode decides (chaincode/CONTRACT.md, "Gates"): when the model has a
policy, a version is approved and deployed only with at least
``required_passes`` evaluations whose result is ``PASSED`` and whose policy is
the model's current policy version, counted once per evaluator organisation.
An evaluation judged by an earlier policy version, or recorded while there was
none, does not count. Without a policy
nothing is gated. This module counts the same from the records a reader
holds; it decides nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from modelledger.sdk.registry.records import ModelPolicy, ModelVersion
from modelledger.sdk.registry.statuses import FAILED, PASSED


@dataclass(frozen=True)
class Gate:
    """Where a version stands against its model's current policy.

    Attributes:
        policy_version: The current policy's version; None when the model has no policy (nothing is gated).
        required: The passing evaluations that policy requires (0 without a policy).
        passing: The distinct evaluator organisations among the version's evaluations that passed that policy
            version.
        latest_failure: The first failure of the newest evaluation when it failed, else "".
    """

    policy_version: int | None
    required: int
    passing: int
    latest_failure: str = ""

    @property
    def met(self) -> bool:
        """True when approval and deployment are not held back by the policy (always, without one)."""
        return self.policy_version is None or self.passing >= self.required

    def summary(self) -> str:
        """One line: ``1 of the 2 passing evaluations that policy version 3 requires: not met``."""
        if self.policy_version is None:
            return "no policy: approval and deployment are not gated"
        said = (
            f"{self.passing} of the {self.required} passing evaluations that policy version "
            f"{self.policy_version} requires: {'met' if self.met else 'not met'}"
        )
        if not self.met:
            said += " (approval and deployment are refused)"
        return said


def evaluation_gate(policy: ModelPolicy | None, version: ModelVersion) -> Gate:
    """The gate of ``version`` under its model's current ``policy`` (None: the model has none)."""
    latest = version.evaluations[-1] if version.evaluations else None
    latest_failure = latest.failures[0] if latest and latest.result == FAILED and latest.failures else ""
    if policy is None:
        return Gate(None, 0, 0, latest_failure)
    passing = len(
        {
            e.evaluator.msp_id
            for e in version.evaluations
            if e.result == PASSED and e.policy is not None and e.policy.version == policy.version
        }
    )
    return Gate(policy.version, policy.required_passes, passing, latest_failure)


def format_number(value: float) -> str:
    """A number as the chaincode writes it in an evaluation's failures (Go's ``strconv.FormatFloat(v, 'g', -1,
    64)``): the shortest digits that read back as ``value``, in exponent form below 1e-4 and from 1e+06 on
    (``0.9``, ``100``, ``1e-05``, ``1.5e+06``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    significant = "".join(map(str, digits)).lstrip("0")
    text = significant.rstrip("0")
    minus = "-" if sign else ""
    if not text:
        return f"{minus}0"
    point = len(significant) + int(exponent)  # how many digits of ``text`` stand before the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{minus}{text}{'0' * (point - len(text))}"
    return f"{minus}{text[:point]}.{text[point:]}"
