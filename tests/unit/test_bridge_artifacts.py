"""The artifact allowlist: only this stack's tracking server and MLflow bucket, no traversal."""

from __future__ import annotations

import pytest

from modelledger.mlops.bridge.artifacts import ArtifactAllowlist, SourceRefusedError

ALLOW = ArtifactAllowlist.of("http://127.0.0.1:7950", ["modelledger-mlflow"])


@pytest.mark.parametrize(
    "uri",
    [
        "mlflow-artifacts:/0/models/m-1/artifacts",
        "mlflow-artifacts://127.0.0.1:7950/0/models/m-1/artifacts",
        "s3://modelledger-mlflow/artifacts/0/models/m-1/artifacts",
    ],
)
def test_this_stacks_stores_are_allowed(uri: str) -> None:
    assert ALLOW.check(uri) == uri


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("file:///etc", "scheme 'file' is not an allowed artifact store"),
        ("/etc/passwd", "scheme '(none)' is not an allowed artifact store"),
        ("https://evil.example/model", "scheme 'https' is not an allowed artifact store"),
        ("runs:/abc/model", "scheme 'runs' is not an allowed artifact store"),
        ("mlflow-artifacts://evil.example:80/0/m", "served by another host"),
        ("s3://other-bucket/m", "bucket 'other-bucket' is not an MLflow artifact bucket here"),
        ("mlflow-artifacts:/0/../../etc", "empty, '.' or '..' path segments"),
        ("mlflow-artifacts:/0/%2e%2e/x", "empty, '.' or '..' path segments"),
        ("mlflow-artifacts:/0//x", "empty, '.' or '..' path segments"),
        ("mlflow-artifacts:/0/a%2fb", "percent-encoded separators"),
        ("mlflow-artifacts:/0/a?x=1", "queries and fragments"),
        ("mlflow-artifacts:/0/a\nb", "control characters"),
        ("mlflow-artifacts:/", "empty, '.' or '..' path segments"),
    ],
)
def test_everything_else_is_refused_with_the_rule(uri: str, reason: str) -> None:
    with pytest.raises(SourceRefusedError) as info:
        ALLOW.check(uri)
    assert reason in str(info.value)
