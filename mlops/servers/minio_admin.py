"""What ``modelledger s3 up`` sets up inside the running server: the buckets and the users with their policies.

- The anchored bucket, with Object Lock and a default retention in COMPLIANCE mode
  (:func:`ensure_anchored_bucket`), and MLflow's plain artifacts bucket (:func:`ensure_mlflow_bucket`),
  made with any S3 client as the root.
- One MinIO user per holder with a policy that allows only its work (:func:`user_policy`,
  :func:`ensure_users`), made with MinIO's admin API through MinIO's own Python SDK
  (``minio``'s ``MinioAdmin``, plain HTTPS; no ``mc`` binary).

Each step does only what is missing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelledger.mlops.servers.minio_root import S3ServerError, read_credentials
from modelledger.mlops.store.evaluation_artifacts import EVALUATIONS_PREFIX
from modelledger.mlops.store.s3_access import REGION, S3AccessError, read_user_credentials
from modelledger.mlops.store.s3errors import error_code
from modelledger.runtime.private_files import make_private_dir, write_private_file
from modelledger.runtime.settings import MLFLOW_ARTIFACTS_PREFIX, S3_BUCKET_ENV, S3Settings, S3User

if TYPE_CHECKING:
    from botocore.client import BaseClient

RETENTION_MODE = "COMPLIANCE"


# --------------------------------------------------------------------------- buckets
def ensure_anchored_bucket(client: BaseClient, settings: S3Settings) -> list[str]:
    """Creates the anchored bucket with Object Lock, and sets its default COMPLIANCE retention.

    Object Lock turns versioning on; it cannot be added to an existing bucket
    here, so a bucket of that name without it is an error, not something to fix.

    Returns:
        What was done (empty if the bucket was already as configured).

    Raises:
        S3ServerError: The bucket exists without Object Lock or versioning, or S3 refused a call.
    """
    from botocore.exceptions import ClientError

    bucket, actions = settings.bucket, []
    try:
        if _create_bucket_if_missing(client, bucket, ObjectLockEnabledForBucket=True):
            actions.append(f"created bucket {bucket} with Object Lock")
        state = bucket_state(client, bucket)
        if state["object_lock"] != "Enabled":
            raise S3ServerError(
                f"bucket {bucket} exists without Object Lock, which can only be enabled at creation; "
                f"choose another {S3_BUCKET_ENV}"
            )
        if state["versioning"] != "Enabled":
            raise S3ServerError(f"bucket {bucket} has Object Lock but versioning is {state['versioning']!r}")
        want = (RETENTION_MODE, settings.retention_days)
        if (state["retention_mode"], state["retention_days"]) != want:
            client.put_object_lock_configuration(
                Bucket=bucket,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": RETENTION_MODE, "Days": settings.retention_days}},
                },
            )
            actions.append(f"set default retention of {bucket} to {RETENTION_MODE} {settings.retention_days} day(s)")
    except ClientError as exc:
        raise S3ServerError(f"S3 refused a call while setting up bucket {bucket}: {exc}") from exc
    return actions


def bucket_state(client: BaseClient, bucket: str) -> dict[str, Any]:
    """Object Lock, default retention and versioning of ``bucket`` as S3 reports them."""
    from botocore.exceptions import ClientError

    try:
        lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        if error_code(exc) != "ObjectLockConfigurationNotFoundError":
            raise
        lock = {}
    retention = lock.get("Rule", {}).get("DefaultRetention", {})
    versioning = client.get_bucket_versioning(Bucket=bucket).get("Status", "")
    return {
        "bucket": bucket,
        "object_lock": lock.get("ObjectLockEnabled", ""),
        "retention_mode": retention.get("Mode", ""),
        "retention_days": retention.get("Days"),
        "versioning": versioning,
    }


def _create_bucket_if_missing(client: BaseClient, bucket: str, **create: Any) -> bool:
    """Creates ``bucket`` (with ``create``'s settings) unless it exists; True if created now.

    Raises:
        ClientError: S3 refused the probe (other than "no such bucket") or the creation.
    """
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    client.create_bucket(Bucket=bucket, **create)
    return True


def ensure_mlflow_bucket(client: BaseClient, settings: S3Settings) -> list[str]:
    """Creates MLflow's artifacts bucket (plain: MLflow deletes and overwrites its artifacts) unless present.

    Raises:
        S3ServerError: S3 refused a call.
    """
    from botocore.exceptions import ClientError

    bucket = settings.mlflow_bucket
    try:
        return [f"created bucket {bucket} for MLflow's artifacts"] if _create_bucket_if_missing(client, bucket) else []
    except ClientError as exc:
        raise S3ServerError(f"S3 refused a call while setting up bucket {bucket}: {exc}") from exc


# --------------------------------------------------------------------------- users and policies
USER_PREFIX = "modelledger-"


def policy_name(user: S3User) -> str:
    """The name of ``user``'s MinIO policy (also its access key id)."""
    return f"{USER_PREFIX}{user.value}"


def user_policy(settings: S3Settings, user: S3User) -> dict[str, Any]:
    """The IAM policy of ``user``: exactly what its work needs, nothing else.

    - MLflow: list, read, write and delete under ``<mlflow bucket>/artifacts/``; nothing elsewhere.
    - The bridge: write new versions into the anchored bucket with a retention
      (``PutObjectRetention`` also lets it extend one; COMPLIANCE mode refuses any
      shortening, to everyone), read them back; list and read MLflow's artifacts.
      No delete, no legal hold, no GOVERNANCE lock (root could bypass it), no bucket
      settings (so it cannot lower the default retention). The retention's length is
      the bridge's own setting: S3 policies cannot bound it on a write.
    - The auditor: read the anchored bucket, its versions, retentions and lock settings.
    - The evaluator: the auditor's reads (it verifies an anchored copy before evaluating it), and new
      objects under ``evaluations/`` (the evaluation bundles), locked by the bucket's default COMPLIANCE
      retention: it sends no lock headers, which S3 would refuse it without ``PutObjectRetention``. No
      delete, no retention change, nothing written anywhere else in the bucket.

    Raises:
        ValueError: ``user`` is the root, which has no policy.
    """
    anchored, mlflow = f"arn:aws:s3:::{settings.bucket}", f"arn:aws:s3:::{settings.mlflow_bucket}"
    artifacts = f"{mlflow}/{MLFLOW_ARTIFACTS_PREFIX}/*"
    list_artifacts = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [mlflow],
        "Condition": {"StringLike": {"s3:prefix": [MLFLOW_ARTIFACTS_PREFIX, f"{MLFLOW_ARTIFACTS_PREFIX}/*"]}},
    }
    read_anchored = [
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketObjectLockConfiguration",
                "s3:GetBucketVersioning",
                "s3:ListBucket",
                "s3:ListBucketVersions",
            ],
            "Resource": [anchored],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectVersion"],
            "Resource": [f"{anchored}/*"],
        },
    ]
    # Keys under evaluations/sha256/ ending in .tar (the content addresses evaluation_artifacts.bundle_key writes;
    # a policy wildcard also matches "/", so deeper keys of that form are allowed too), nothing else.
    evaluations = f"{anchored}/{EVALUATIONS_PREFIX}/sha256/*.tar"
    statements: dict[S3User, list[dict[str, Any]]] = {
        S3User.MLFLOW: [
            list_artifacts,
            {
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                "Resource": [artifacts],
            },
        ],
        S3User.BRIDGE: [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"], "Resource": [anchored]},
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:GetObjectRetention",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:PutObjectRetention",
                ],
                "Resource": [f"{anchored}/*"],
            },
            {
                # GOVERNANCE mode would let the root delete the version at once (BypassGovernanceRetention).
                # MinIO enforces this condition on both calls (it rejects a remaining-retention-days one
                # on PutObject as a malformed policy), so the bridge can only write COMPLIANCE locks.
                "Effect": "Deny",
                "Action": ["s3:PutObject", "s3:PutObjectRetention"],
                "Resource": [f"{anchored}/*"],
                "Condition": {"StringEquals": {"s3:object-lock-mode": ["GOVERNANCE"]}},
            },
            list_artifacts,
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [artifacts]},
        ],
        S3User.AUDITOR: read_anchored,
        S3User.EVALUATOR: [
            *read_anchored,
            {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [evaluations]},
            {
                "Effect": "Deny",
                "Action": ["s3:PutObject"],
                "Resource": [evaluations],
                "Condition": {"StringEquals": {"s3:object-lock-mode": ["GOVERNANCE"]}},
            },
        ],
    }
    if user not in statements:
        raise ValueError(f"the {user.value} user has no policy: it administers MinIO")
    return {"Version": "2012-10-17", "Statement": statements[user]}


def _canonical_policy(policy: dict[str, Any]) -> str:
    """A policy in a form that ignores the order MinIO gives back lists and keys in."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return sorted((norm(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
        return value

    return json.dumps(norm(policy), sort_keys=True)


def _admin(settings: S3Settings) -> Any:
    """MinIO's admin client (``minio.MinioAdmin``) as the root, TLS verified against our CA."""
    import urllib3
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    root = read_credentials(settings)
    http = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED",
        ca_certs=str(settings.ca_file),
        timeout=urllib3.Timeout(connect=10, read=60),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return MinioAdmin(
        endpoint=f"{settings.host}:{settings.port}",
        credentials=StaticProvider(root.access_key, root.secret_key),
        region=REGION,
        http_client=http,
    )


def _admin_read(call: Callable[[], str]) -> dict[str, Any] | None:
    """The JSON an admin query returns, or None when MinIO has no such user or policy (HTTP 404)."""
    from minio.error import MinioAdminException

    try:
        return json.loads(call())
    except MinioAdminException as exc:
        if exc._code == "404":
            return None
        raise


def ensure_users(settings: S3Settings) -> list[str]:
    """Creates the MLflow, bridge, auditor and evaluator users with their policies, doing only what is missing.

    A user's secret is generated once into its 0600 credential file; the user
    is (re)created from that file whenever MinIO does not know it.

    Returns:
        What was done (empty if all was in place).

    Raises:
        S3ServerError: MinIO refused or could not be reached.
    """
    import urllib3.exceptions
    from minio.error import MinioAdminException

    actions: list[str] = []
    make_private_dir(settings.users_dir, tighten=True)
    admin = _admin(settings)
    try:
        for user in (S3User.MLFLOW, S3User.BRIDGE, S3User.AUDITOR, S3User.EVALUATOR):
            name, path = policy_name(user), settings.user_credentials_file(user)
            fresh = not path.exists()
            if fresh:
                key = secrets.token_hex(20)
                write_private_file(path, f"[default]\naws_access_key_id = {name}\naws_secret_access_key = {key}\n")
                actions.append(f"generated S3 credentials for {user.value}")
            creds = read_user_credentials(settings, user)
            want = user_policy(settings, user)
            have = _admin_read(lambda name=name: admin.policy_info(name))
            if have is None or _canonical_policy(have) != _canonical_policy(want):
                admin.policy_add(name, policy=want)
                actions.append(f"set S3 policy {name}")
            info = _admin_read(lambda creds=creds: admin.user_info(creds.access_key))
            if fresh or info is None:
                admin.user_add(creds.access_key, creds.secret_key)
                actions.append(f"created S3 user {creds.access_key}")
            if info is None or info.get("policyName") != name or info.get("status") != "enabled":
                admin.policy_set(name, user=creds.access_key)
    except S3ServerError:
        raise
    except S3AccessError as exc:  # a user's credential file is damaged
        raise S3ServerError(str(exc)) from exc
    except (MinioAdminException, urllib3.exceptions.HTTPError, ValueError) as exc:
        raise S3ServerError(f"MinIO refused to set up its users and policies: {exc}") from exc
    return actions


def bucket_as_configured(state: dict[str, Any], settings: S3Settings) -> bool:
    """Whether a :func:`bucket_state` answer is locked, versioned and retained as ``settings`` say."""
    return (
        state["object_lock"] == "Enabled"
        and state["versioning"] == "Enabled"
        and state["retention_mode"] == RETENTION_MODE
        and state["retention_days"] == settings.retention_days
    )
