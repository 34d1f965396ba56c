"""How the CLI words the evaluation gate: a model's policy, a version's evaluations, and the approval set's decisions.

``model policy`` and ``model show`` print these as ``key``/``value`` fields
(:func:`~modelledger.mlops.cli.output.show_fields`); identifiers (dataset
digests, run and transaction ids) are printed whole, as everywhere in the CLI.
Results and decisions are the vocabulary's words
(:mod:`modelledger.sdk.registry.statuses`), numbers are written as the
chaincode writes them in its failures (:func:`~modelledger.sdk.registry.gate.format_number`).
"""

from __future__ import annotations

from modelledger.sdk.registry.gate import Gate, format_number
from modelledger.sdk.registry.records import Actor, Evaluation, MetricThreshold, ModelPolicy, ModelVersion
from modelledger.sdk.registry.statuses import decision_word, result_word

NO_POLICY = "no policy"
NOT_DECIDED = "not decided yet"
MORE_METRICS = 5  # metrics shown per evaluation when no threshold names them (every one is in --json)


def bound(threshold: MetricThreshold) -> str:
    """``accuracy_score >= 0.9``, ``log_loss <= 0.3``, ``0 <= f1 <= 1``."""
    low = None if threshold.min is None else format_number(threshold.min)
    high = None if threshold.max is None else format_number(threshold.max)
    if low is not None and high is not None:
        return f"{low} <= {threshold.metric} <= {high}"
    if low is not None:
        return f"{threshold.metric} >= {low}"
    return f"{threshold.metric} <= {high}"


def passes(n: int) -> str:
    return f"{n} passing evaluation{'' if n == 1 else 's'}"


def who(actor: Actor) -> str:
    """``evaluator@Org2MSP``."""
    return f"{actor.role}@{actor.msp_id}"


def evaluator_rule(policy: ModelPolicy) -> str:
    if policy.independent_evaluator:
        return "of another organisation than the registrant's"
    return "of any organisation (the registrant's too)"


def policy_line(policy: ModelPolicy | None) -> str:
    """One line: ``version 2: accuracy_score >= 0.9, log_loss <= 0.3; 1 passing evaluation required; evaluator of
    another organisation than the registrant's``, or ``no policy``."""
    if policy is None:
        return NO_POLICY
    thresholds = ", ".join(bound(t) for t in policy.thresholds) or "no threshold"
    return (
        f"version {policy.version}: {thresholds}; {passes(policy.required_passes)} required; "
        f"evaluator {evaluator_rule(policy)}"
    )


def policy_changes(before: ModelPolicy | None, after: ModelPolicy | None) -> list[str]:
    """What setting a policy changed, one line each: ``added: f1 >= 0.8``, ``dropped: log_loss <= 0.3``,
    ``changed: accuracy_score >= 0.9 -> accuracy_score >= 0.95``, and the same for the passes required and the
    evaluator rule; ``new policy`` if there was none, ``unchanged: ...`` if the ledger kept the same version."""
    if after is None:
        return []
    if before is None:
        return ["new policy (the model had none)"]
    if before.version == after.version:
        return [f"unchanged: version {after.version} is this policy already"]
    lines = []
    old = {t.metric: t for t in before.thresholds}
    new = {t.metric: t for t in after.thresholds}
    for metric in sorted(old.keys() | new.keys()):
        if metric not in new:
            lines.append(f"dropped: {bound(old[metric])}")
        elif metric not in old:
            lines.append(f"added: {bound(new[metric])}")
        elif (old[metric].min, old[metric].max) != (new[metric].min, new[metric].max):
            lines.append(f"changed: {bound(old[metric])} -> {bound(new[metric])}")
    if before.required_passes != after.required_passes:
        lines.append(f"changed: {passes(before.required_passes)} -> {passes(after.required_passes)} required")
    if before.independent_evaluator != after.independent_evaluator:
        lines.append(f"changed: evaluator {evaluator_rule(before)} -> {evaluator_rule(after)}")
    return lines


def policy_fields(name: str, owner: str, policy: ModelPolicy | None) -> list[tuple[str, str]]:
    """The fields ``model policy NAME`` prints: one per threshold, so that a script can pick one out."""
    rows = [("name", name), ("owner", owner)]
    if policy is None:
        return [*rows, ("policy", NO_POLICY)]
    change = policy.last_change
    return [
        *rows,
        ("policy", f"version {policy.version}"),
        *((f"threshold {t.metric}", bound(t)) for t in policy.thresholds),
        ("required", passes(policy.required_passes)),
        ("evaluator", evaluator_rule(policy)),
        ("set", f"by {who(change.actor)} {change.time} tx {change.tx_id}"),
    ]


def shown_metrics(evaluation: Evaluation, policy: ModelPolicy | None) -> str:
    """The evaluation's metrics the policy bounds (its own policy, else the model's), else its first few."""
    bounded = {t.metric for t in (evaluation.policy or policy or ModelPolicy()).thresholds}
    picked = [m for m in evaluation.metrics if m.key in bounded] if bounded else evaluation.metrics[:MORE_METRICS]
    text = ", ".join(f"{m.key}={format_number(m.value)}" for m in picked) or "none"
    rest = len(evaluation.metrics) - len(picked)
    return f"{text} (+{rest} more)" if rest else text


def evaluation_line(evaluation: Evaluation, policy: ModelPolicy | None) -> str:
    """``passed (policy version 2) by evaluator@Org2MSP 2026-...; accuracy_score=0.95; hold-out <sha256>; run
    <id>; tx <id>``, and ``; failures: ...`` when it failed (``no policy by ...`` when judged by none)."""
    judged = f" (policy version {evaluation.policy.version})" if evaluation.policy else ""
    line = (
        f"{result_word(evaluation.result)}{judged} by {who(evaluation.evaluator)} {evaluation.time}; "
        f"{shown_metrics(evaluation, policy)}; hold-out {evaluation.dataset_sha256}; run {evaluation.run_id}; "
        f"tx {evaluation.tx_id}"
    )
    if evaluation.failures:
        line += "; failures: " + "; ".join(evaluation.failures)
    return line


def approval_set(version: ModelVersion, current_set: list[str]) -> list[str]:
    """The organisations whose decisions the version needs, as the chaincode reckons them (``approvalSet`` in
    chaincode/registry/approvals.go): those of the set recorded at its registration still in the current approval
    set; when none is (or it recorded none: registered before chaincode 1.3.0), the current set."""
    return [org for org in version.approval_orgs if org in current_set] or list(current_set)


def approval_fields(version: ModelVersion, current_set: list[str]) -> list[tuple[str, str]]:
    """One field per organisation of the approval set: its decision, or ``not decided yet``; then any decision of
    an organisation no longer in it (recorded, but no longer counted)."""
    decided = {a.msp_id: a for a in version.approvals}
    members = approval_set(version, current_set)
    rows = []
    for org in members + sorted(set(decided) - set(members)):
        a = decided.get(org)
        if a is None:
            rows.append((f"approval {org}", NOT_DECIDED))
            continue
        said = f"{decision_word(a.decision)} by {who(a.actor)} {a.time}"
        said = f"{said}: {a.comment}" if a.comment else said
        rows.append((f"approval {org}", said if org in members else f"{said} (no longer in the approval set)"))
    return rows


def gate_line(gate: Gate) -> str:
    """:meth:`Gate.summary`, and the newest evaluation's first failure when it failed."""
    said = gate.summary()
    return f"{said}; the latest evaluation failed: {gate.latest_failure}" if gate.latest_failure else said
