"""The artifact allowlist: only this stack's tracking server and MLflow bucket, no traversal."""

from __future__ import annotations

import re
from types import SimpleNamespace as NS

import pytest

from modelledger.mlops.bridge.artifacts import (
    ArtifactAllowlist,
    SourceRefusedError,
    resolve_download_uri,
    stored_location,
)

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


class FakeRegistry:
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        return self.uri if (name, version) == ("m", "1") else "mlflow-artifacts:/0/other/artifacts"

    def get_run(self, run_id: str):
        return NS(info=NS(artifact_uri=f"mlflow-artifacts:/1/{run_id}/artifacts"))

    def get_logged_model(self, model_id: str):
        return NS(artifact_location=f"mlflow-artifacts:/1/models/{model_id}/artifacts")


@pytest.mark.parametrize(
    ("registered", "concrete"),
    [
        ("runs:/abc123/model", "mlflow-artifacts:/1/abc123/artifacts/model"),
        ("runs:/abc123", "mlflow-artifacts:/1/abc123/artifacts"),
        ("models:/m-77", "mlflow-artifacts:/1/models/m-77/artifacts"),
        ("models:/other/2", "mlflow-artifacts:/0/other/artifacts"),
        ("mlflow-artifacts:/0/x/artifacts", "mlflow-artifacts:/0/x/artifacts"),
    ],
)
def test_indirect_sources_resolve_to_where_the_files_are(registered: str, concrete: str) -> None:
    assert resolve_download_uri(FakeRegistry(registered), "m", "1") == concrete


def test_a_run_path_with_traversal_is_refused_after_resolution() -> None:
    uri = resolve_download_uri(FakeRegistry("runs:/abc/../../etc"), "m", "1")
    with pytest.raises(SourceRefusedError, match=r"'\.\.' path segments"):
        ALLOW.check(uri)


@pytest.mark.parametrize(
    ("uri", "stored"),
    [
        ("mlflow-artifacts:/1/abc/artifacts/model", "s3://modelledger-mlflow/artifacts/1/abc/artifacts/model"),
        ("mlflow-artifacts://127.0.0.1:7950/1/m", "s3://modelledger-mlflow/artifacts/1/m"),
        ("s3://modelledger-mlflow/x", "s3://modelledger-mlflow/x"),
    ],
)
def test_tracking_server_uris_map_to_its_artifacts_destination(uri: str, stored: str) -> None:
    assert stored_location(uri, "s3://modelledger-mlflow/artifacts/") == stored
    assert stored_location(uri, "") == uri  # no destination known: through the server


def test_a_mapped_location_is_still_checked_against_the_allowlist() -> None:
    with pytest.raises(SourceRefusedError, match=re.escape("empty, '.' or '..' path segments")):
        ALLOW.check(stored_location("mlflow-artifacts:/0/../../secret", "s3://modelledger-mlflow/artifacts"))
