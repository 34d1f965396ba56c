"""The S3 server against a real MinIO: TLS, the anchored bucket's Object Lock, credentials, restarts.

Tests run in file order and share one server; each leaves it running.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import ssl
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelledger.mlops.servers.minio import S3Server
from modelledger.mlops.servers.minio_admin import bucket_state
from modelledger.mlops.servers.minio_root import read_credentials, root_client
from modelledger.mlops.store.s3_access import read_user_credentials, s3_client
from modelledger.runtime.settings import S3User
from modelledger.runtime.tls import tls_context

pytestmark = pytest.mark.integration


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _refused_by_lock(exc: pytest.ExceptionInfo[ClientError]) -> bool:
    """AWS S3 refuses with AccessDenied; MinIO with InvalidRequest "Object is WORM protected"."""
    err = exc.value.response["Error"]
    return err["Code"] == "AccessDenied" or (err["Code"] == "InvalidRequest" and "WORM protected" in err["Message"])


def test_server_is_ready_over_tls_verified_with_our_ca(s3_server: S3Server) -> None:
    s = s3_server.settings
    st = s3_server.status()
    assert st.ok, st.to_dict()
    url = f"{s.endpoint_url}/minio/health/ready"
    with urllib.request.urlopen(url, timeout=5, context=tls_context(s.ca_file)) as resp:
        assert resp.status == 200
    # Without our CA the server's certificate is not trusted.
    with pytest.raises(urllib.error.URLError) as exc:
        urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context())
    assert isinstance(exc.value.reason, ssl.SSLCertVerificationError)


def test_bucket_has_compliance_default_retention_and_versioning(s3_server: S3Server) -> None:
    s = s3_server.settings
    client = root_client(s)
    lock = client.get_object_lock_configuration(Bucket=s.bucket)["ObjectLockConfiguration"]
    assert lock == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": s.retention_days}},
    }
    assert client.get_bucket_versioning(Bucket=s.bucket)["Status"] == "Enabled"


def test_an_object_without_explicit_retention_gets_the_default(s3_server: S3Server) -> None:
    s = s3_server.settings
    client = root_client(s)
    put = client.put_object(Bucket=s.bucket, Key="defaults/a.bin", Body=b"default retention")
    head = client.head_object(Bucket=s.bucket, Key="defaults/a.bin", VersionId=put["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=s.retention_days)
    assert abs((until - expected).total_seconds()) < 120


def test_the_server_checks_the_sha256_checksum_sent_with_an_object(s3_server: S3Server) -> None:
    s = s3_server.settings
    client = root_client(s)
    body = b"checked bytes"
    put = client.put_object(Bucket=s.bucket, Key="checksum/ok.bin", Body=body, ChecksumSHA256=_sha256_b64(body))
    assert put["ChecksumSHA256"] == _sha256_b64(body)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=s.bucket, Key="checksum/bad.bin", Body=body, ChecksumSHA256=_sha256_b64(b"other"))
    assert _code(exc) in ("BadDigest", "XAmzContentChecksumMismatch")
    with pytest.raises(ClientError):
        client.head_object(Bucket=s.bucket, Key="checksum/bad.bin")


def test_a_locked_version_cannot_be_deleted_nor_its_retention_shortened(s3_server: S3Server) -> None:
    s = s3_server.settings
    client = root_client(s)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(microsecond=0)
    put = client.put_object(
        Bucket=s.bucket,
        Key="locked/model.bin",
        Body=b"weights v1",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )
    version = put["VersionId"]
    assert client.get_object_retention(Bucket=s.bucket, Key="locked/model.bin", VersionId=version)["Retention"] == {
        "Mode": "COMPLIANCE",
        "RetainUntilDate": until,
    }

    with pytest.raises(ClientError) as exc:
        client.delete_object(Bucket=s.bucket, Key="locked/model.bin", VersionId=version)
    assert _refused_by_lock(exc), exc.value.response["Error"]

    for mode, bypass in (("COMPLIANCE", False), ("GOVERNANCE", True)):
        with pytest.raises(ClientError) as exc:
            client.put_object_retention(
                Bucket=s.bucket,
                Key="locked/model.bin",
                VersionId=version,
                Retention={"Mode": mode, "RetainUntilDate": until - dt.timedelta(minutes=4)},
                BypassGovernanceRetention=bypass,
            )
        assert _refused_by_lock(exc), (mode, bypass, exc.value.response["Error"])

    # Overwriting the key or deleting it without a version id only adds versions.
    client.put_object(Bucket=s.bucket, Key="locked/model.bin", Body=b"weights v2")
    client.delete_object(Bucket=s.bucket, Key="locked/model.bin")
    got = client.get_object(Bucket=s.bucket, Key="locked/model.bin", VersionId=version)
    assert got["Body"].read() == b"weights v1"

    # Extending the retention is allowed.
    longer = until + dt.timedelta(minutes=5)
    client.put_object_retention(
        Bucket=s.bucket,
        Key="locked/model.bin",
        VersionId=version,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer},
    )
    retention = client.get_object_retention(Bucket=s.bucket, Key="locked/model.bin", VersionId=version)
    assert retention["Retention"]["RetainUntilDate"] == longer


def test_credentials_are_private_and_the_secret_is_in_no_log_or_command_line(s3_server: S3Server) -> None:
    s = s3_server.settings
    secrets = [read_credentials(s).secret_key]
    secrets += [read_user_credentials(s, u).secret_key for u in S3User if u is not S3User.ROOT]
    assert read_credentials(s).secret_key == secrets[0]
    assert len(set(secrets)) == len(S3User)
    for user in S3User:
        assert stat.S_IMODE(s.user_credentials_file(user).stat().st_mode) == 0o600, user
    assert stat.S_IMODE(s.users_dir.stat().st_mode) == 0o700
    logs = sorted(s3_server.supervisor.log_dir.glob("*.log"))
    assert logs and logs[0].stat().st_size > 0
    info = s3_server.supervisor.running("minio")
    assert info is not None
    for secret in secrets:
        for path in [*logs, *s3_server.supervisor.pid_dir.glob("*"), s.connection_file]:
            assert secret not in path.read_text(errors="replace"), path
        assert secret.encode() not in Path(f"/proc/{info.pid}/cmdline").read_bytes()
    assert json.loads(s.connection_file.read_text())["credentials_file"] == str(s.credentials_file)


def test_up_again_changes_nothing(s3_server: S3Server) -> None:
    s = s3_server.settings
    pid = s3_server.supervisor.running("minio").pid  # type: ignore[union-attr]
    users = [s.user_credentials_file(u) for u in S3User]
    files = {p: p.read_bytes() for p in [*users, s.ca_file, s.server_cert_file, s.connection_file]}
    report = s3_server.up()
    assert report.actions == []
    assert s3_server.supervisor.running("minio").pid == pid  # type: ignore[union-attr]
    assert {p: p.read_bytes() for p in files} == files


def test_down_then_up_keeps_objects_and_settings(s3_server: S3Server) -> None:
    s = s3_server.settings
    client = root_client(s)
    put = client.put_object(Bucket=s.bucket, Key="restart/kept.bin", Body=b"survives a restart")
    assert s3_server.down() == ["minio"]
    assert not s3_server.status().running
    assert s3_server.down() == []
    report = s3_server.up()
    assert report.actions == ["started minio"]
    assert report.seconds_to_healthy < 30
    got = client.get_object(Bucket=s.bucket, Key="restart/kept.bin", VersionId=put["VersionId"])
    assert got["Body"].read() == b"survives a restart"
    assert s3_server.status().ok


def _refused(call) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return _code(exc)


def test_each_credential_is_refused_outside_its_policy(s3_server: S3Server) -> None:
    s = s3_server.settings
    mlflow, bridge, auditor = (s3_client(s, user=u) for u in (S3User.MLFLOW, S3User.BRIDGE, S3User.AUDITOR))
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(microsecond=0)
    lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
    anchored = {"Bucket": s.bucket, "Key": "policy/model.bin"}
    artifact = {"Bucket": s.mlflow_bucket, "Key": "artifacts/1/run/model.pkl"}
    elsewhere = {"Bucket": s.mlflow_bucket, "Key": "elsewhere/x.bin"}

    # Each does its work.
    version = bridge.put_object(**anchored, Body=b"anchored", **lock)["VersionId"]
    mlflow.put_object(**artifact, Body=b"artifact")
    assert mlflow.get_object(**artifact)["Body"].read() == b"artifact"
    assert [o["Key"] for o in mlflow.list_objects_v2(Bucket=s.mlflow_bucket, Prefix="artifacts/1/")["Contents"]] == [
        artifact["Key"]
    ]
    assert bridge.get_object(**artifact)["Body"].read() == b"artifact"
    assert bridge.get_object(**anchored, VersionId=version)["Body"].read() == b"anchored"
    longer = {"Mode": "COMPLIANCE", "RetainUntilDate": until + dt.timedelta(minutes=5)}
    bridge.put_object_retention(**anchored, VersionId=version, Retention=longer)
    assert auditor.get_object(**anchored, VersionId=version)["Body"].read() == b"anchored"
    assert auditor.get_object_retention(**anchored, VersionId=version)["Retention"] == longer
    assert bucket_state(auditor, s.bucket)["retention_mode"] == "COMPLIANCE"

    # MLflow: its own artifact prefix only; nothing of the anchored bucket.
    assert _refused(lambda: mlflow.get_object(**anchored, VersionId=version)) == "AccessDenied"
    assert _refused(lambda: mlflow.list_objects_v2(Bucket=s.bucket)) == "AccessDenied"
    assert _refused(lambda: mlflow.put_object(**anchored, Body=b"x")) == "AccessDenied"
    assert _refused(lambda: mlflow.put_object(**elsewhere, Body=b"x")) == "AccessDenied"
    assert _refused(lambda: mlflow.list_objects_v2(Bucket=s.mlflow_bucket)) == "AccessDenied"
    assert _refused(lambda: mlflow.create_bucket(Bucket="mlflow-made")) == "AccessDenied"

    # The bridge: no delete (not even a delete marker), no shorter retention, no bucket settings, no MLflow writes.
    assert _refused(lambda: bridge.delete_object(**anchored)) == "AccessDenied"
    assert _refused(lambda: bridge.delete_object(**anchored, VersionId=version)) == "AccessDenied"
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": until - dt.timedelta(minutes=4)}
    assert _refused(lambda: bridge.put_object_retention(**anchored, VersionId=version, Retention=shorter)) in (
        "AccessDenied",
        "InvalidRequest",
    )
    assert auditor.get_object_retention(**anchored, VersionId=version)["Retention"] == longer
    one_day = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    assert (
        _refused(lambda: bridge.put_object_lock_configuration(Bucket=s.bucket, ObjectLockConfiguration=one_day))
        == "AccessDenied"
    )
    assert (
        _refused(lambda: bridge.put_bucket_versioning(Bucket=s.bucket, VersioningConfiguration={"Status": "Suspended"}))
        == "AccessDenied"
    )
    assert _refused(lambda: bridge.put_object(**artifact, Body=b"x")) == "AccessDenied"
    assert _refused(lambda: bridge.delete_object(**artifact)) == "AccessDenied"

    # The auditor: reads only.
    assert _refused(lambda: auditor.put_object(Bucket=s.bucket, Key="policy/other.bin", Body=b"x")) == "AccessDenied"
    assert _refused(lambda: auditor.delete_object(**anchored)) == "AccessDenied"
    assert (
        _refused(lambda: auditor.put_object_retention(**anchored, VersionId=version, Retention=longer))
        == "AccessDenied"
    )
    assert _refused(lambda: auditor.get_object(**artifact)) == "AccessDenied"

    # Nothing changed: one version, MLflow's artifact intact, the bucket's lock as configured.
    root = root_client(s)
    versions = root.list_object_versions(Bucket=s.bucket, Prefix=anchored["Key"])
    assert [v["VersionId"] for v in versions.get("Versions", [])] == [version] and not versions.get("DeleteMarkers")
    assert root.get_object(**artifact)["Body"].read() == b"artifact"
    assert bucket_state(root, s.bucket)["retention_days"] == s.retention_days


def test_the_bridge_can_neither_write_a_bypassable_lock_nor_delete_a_version(s3_server: S3Server) -> None:
    """Refused by the bridge's policy (AccessDenied), not merely by a lock (MinIO's InvalidRequest)."""
    s = s3_server.settings
    root, bridge = root_client(s), s3_client(s, user=S3User.BRIDGE)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(microsecond=0)
    governance = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until}
    compliance = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
    own = {"Bucket": s.bucket, "Key": "bypass/own.bin"}
    mine = bridge.put_object(**own, Body=b"compliance", **compliance)["VersionId"]

    # No GOVERNANCE lock, which the root could lift at once with BypassGovernanceRetention.
    assert _refused(lambda: bridge.put_object(Bucket=s.bucket, Key="bypass/gov.bin", Body=b"x", **governance)) == (
        "AccessDenied"
    )
    # No legal hold.
    assert (
        _refused(lambda: bridge.put_object_legal_hold(**own, VersionId=mine, LegalHold={"Status": "ON"}))
        == "AccessDenied"
    )
    # No bypass of a GOVERNANCE lock the root wrote.
    by_root = {"Bucket": s.bucket, "Key": "bypass/root.bin"}
    gov_version = root.put_object(**by_root, Body=b"root", **governance)["VersionId"]
    assert (
        _refused(lambda: bridge.delete_object(**by_root, VersionId=gov_version, BypassGovernanceRetention=True))
        == "AccessDenied"
    )
    # No delete of a version whose lock has ended: only the policy stands in the way.
    expired = {"Bucket": s.bucket, "Key": "bypass/expired.bin"}
    briefly = {
        "ObjectLockMode": "GOVERNANCE",
        "ObjectLockRetainUntilDate": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
    }
    old_version = root.put_object(**expired, Body=b"old", **briefly)["VersionId"]
    time.sleep(2)
    assert _refused(lambda: bridge.delete_object(**expired, VersionId=old_version)) == "AccessDenied"
    # Nor a GOVERNANCE lock put on a version afterwards, even one no lock holds any more.
    later = {"Mode": "GOVERNANCE", "RetainUntilDate": until + dt.timedelta(minutes=5)}
    with pytest.raises(ClientError) as exc:
        bridge.put_object_retention(**expired, VersionId=old_version, Retention=later)
    assert _code(exc) == "AccessDenied", exc.value.response["Error"]

    # Nothing changed: each version still there, the bridge's COMPLIANCE and without a legal hold.
    for where, vid in ((own, mine), (by_root, gov_version), (expired, old_version)):
        assert root.head_object(**where, VersionId=vid)["VersionId"] == vid
    head = root.head_object(**own, VersionId=mine)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head.get("ObjectLockLegalHoldStatus") != "ON"
    assert not root.list_object_versions(Bucket=s.bucket, Prefix="bypass/gov.bin").get("Versions")


def test_the_evaluator_reads_anchored_copies_and_writes_only_new_locked_bundles(s3_server: S3Server) -> None:
    from modelledger.mlops.store.evaluation_artifacts import store_bundle

    s = s3_server.settings
    bridge, evaluator = (s3_client(s, user=u) for u in (S3User.BRIDGE, S3User.EVALUATOR))
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(microsecond=0)
    lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
    anchored = {"Bucket": s.bucket, "Key": "evaluator/model.bin"}
    version = bridge.put_object(**anchored, Body=b"anchored", **lock)["VersionId"]
    # It reads what it verifies before evaluating: objects, versions, retentions, the bucket's lock settings.
    assert evaluator.get_object(**anchored, VersionId=version)["Body"].read() == b"anchored"
    assert evaluator.get_object_retention(**anchored, VersionId=version)["Retention"]["Mode"] == "COMPLIANCE"
    assert bucket_state(evaluator, s.bucket)["retention_mode"] == "COMPLIANCE"

    # It stores a bundle write-once under evaluations/, locked by the bucket's default COMPLIANCE retention;
    # the same bundle again writes nothing.
    stored = store_bundle(evaluator, s.bucket, b"an evaluation bundle")
    again = store_bundle(evaluator, s.bucket, b"an evaluation bundle")
    assert stored.created and not again.created and again.version_id == stored.version_id
    assert stored.key.startswith("evaluations/sha256/")
    head = evaluator.head_object(Bucket=s.bucket, Key=stored.key, VersionId=stored.version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    bundle = {"Bucket": s.bucket, "Key": stored.key}

    # Nothing else: no delete, no retention change, no GOVERNANCE lock, nothing outside evaluations/.
    assert _refused(lambda: evaluator.delete_object(**bundle)) == "AccessDenied"
    assert _refused(lambda: evaluator.delete_object(**bundle, VersionId=stored.version_id)) == "AccessDenied"
    longer = {"Mode": "COMPLIANCE", "RetainUntilDate": until + dt.timedelta(days=1)}
    assert (
        _refused(lambda: evaluator.put_object_retention(**bundle, VersionId=stored.version_id, Retention=longer))
        == "AccessDenied"
    )
    governance = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until}
    assert (
        _refused(lambda: evaluator.put_object(Bucket=s.bucket, Key="evaluations/g.tar", Body=b"x", **governance))
        == "AccessDenied"
    )
    assert _refused(lambda: evaluator.put_object(**anchored, Body=b"replaced", **lock)) == "AccessDenied"
    assert _refused(lambda: evaluator.put_object(Bucket=s.bucket, Key="blobs/sha256/x", Body=b"x")) == "AccessDenied"
    # Under evaluations/, only content addresses (evaluations/sha256/<hex>.tar).
    assert _refused(lambda: evaluator.put_object(Bucket=s.bucket, Key="evaluations/x.bin", Body=b"x")) == "AccessDenied"
    assert _refused(lambda: evaluator.delete_object(**anchored, VersionId=version)) == "AccessDenied"
