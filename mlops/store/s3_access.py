"""How everything else reaches the S3 server: credential files, the environment of a child's boto3, and
the boto3 client itself.

``modelledger s3 up`` (:mod:`~modelledger.mlops.servers.minio`) generates a root key for the
administration (read and written only by :mod:`~modelledger.mlops.servers.minio_root`) and one key
per holder (:class:`~modelledger.runtime.settings.S3User`), each in a 0600 AWS shared-credentials file
that this module reads. Every other part speaks S3 through :func:`s3_client` as one of those users: a
boto3 client that verifies TLS against our CA. Nothing here is MinIO-specific, so the same code runs
against AWS S3.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelledger.runtime.settings import S3Settings, S3User

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.config import Config

REGION = "us-east-1"


class S3AccessError(Exception):
    """No S3 client can be made: a credential file is missing or damaged (the message says what to do)."""


@dataclass(frozen=True)
class S3Credentials:
    """One S3 key: its access key and secret; ``repr`` never shows the secret."""

    access_key: str
    secret_key: str = field(repr=False)


def read_user_credentials(settings: S3Settings, user: S3User) -> S3Credentials:
    """The credentials of ``user`` (not the root: its key is the server's, see
    :mod:`modelledger.mlops.servers.minio_root`), from the AWS shared-credentials file ``up`` wrote.

    Raises:
        S3AccessError: The file is missing or damaged (run ``make s3-up``).
        ValueError: ``user`` is the root.
    """
    if user is S3User.ROOT:
        raise ValueError("the S3 root key is the server's administration key: use servers.minio_root.root_client")
    path = settings.user_credentials_file(user)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(), source=str(path))
        section = parser["default"]
        return S3Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])
    except FileNotFoundError as exc:
        raise S3AccessError(f"no S3 credentials for {user.value} at {path}; run `make s3-up` first") from exc
    except (OSError, configparser.Error, KeyError) as exc:
        # Not the exception's text: configparser quotes the offending line, which may hold the secret.
        raise S3AccessError(
            f"cannot read S3 credentials of {user.value} from {path} ({type(exc).__name__}); "
            "fix or delete the file and run `make s3-up`"
        ) from exc


def aws_env(settings: S3Settings, user: S3User) -> dict[str, str]:
    """The environment under which a child process's boto3 (MLflow's S3 client too) acts as ``user``.

    It names the credential file; the key itself is never in an environment, a command line or a log.
    """
    return {
        "AWS_SHARED_CREDENTIALS_FILE": str(settings.user_credentials_file(user)),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CA_BUNDLE": str(settings.ca_file),
    }


def client_config(config: Config | None = None) -> Config:
    """The botocore configuration of :func:`s3_client`, merged with ``config`` if given.

    Path-style addressing and SigV4 in us-east-1. Payload signing is off:
    over TLS the body is then sent as ``UNSIGNED-PAYLOAD`` and its integrity
    rests on the ``x-amz-checksum-*`` the caller sends, so bytes are not hashed
    twice. botocore adds checksums of its own only where an operation requires
    one (``when_required``), and validates response checksums only when asked.
    """
    from botocore.config import Config

    base = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    return base.merge(config) if config is not None else base


def s3_client(
    settings: S3Settings | None = None,
    config: Config | None = None,
    *,
    user: S3User | None = None,
    credentials: S3Credentials | None = None,
) -> BaseClient:
    """A boto3 S3 client for the server of ``settings`` (default: from the environment), acting as ``user``.

    TLS is verified against ``settings.ca_file``; credentials come from the
    file ``up`` wrote for ``user``, or are ``credentials`` (the server's root
    client passes its key so). ``config`` (a ``botocore.config.Config``)
    is merged on top of :func:`client_config`, e.g. to raise ``max_pool_connections``.

    Raises:
        S3AccessError: No credentials yet (the server was never brought up).
        ValueError: Neither or both of ``user`` and ``credentials`` are given, or ``user`` is the root.
    """
    import boto3

    if (user is None) == (credentials is None):
        raise ValueError("s3_client needs either a user or credentials")
    s = settings or S3Settings.from_env()
    creds = credentials if credentials is not None else read_user_credentials(s, user)  # type: ignore[arg-type]
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s.endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        region_name=REGION,
        verify=str(s.ca_file),
        config=client_config(config),
    )
