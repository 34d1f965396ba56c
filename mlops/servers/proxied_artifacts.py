"""The tracking server's artifact store: S3 that only the server talks to.

MLflow 3.17 lets a client bypass the tracking server. A server whose
``--artifacts-destination`` is an ``s3://`` location answers
``/api/3.0/mlflow/server-info`` with ``multipart_downloads_enabled`` and
``multipart_uploads_enabled`` set. It decides this only from the class of the
artifact repository (``isinstance`` of MLflow's ``MultipartDownloadMixin`` and
``MultipartUploadMixin``); no server setting turns it off. A stock client then
asks for presigned S3 URLs and transfers straight to and from the S3 endpoint:
every download, and every upload from ``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE``
(500 MiB) on. Those URLs name the stack's loopback MinIO, whose private CA the
client does not trust, and they are signed with the server's own S3 key.
``MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD``/``_UPLOAD`` change this only in the
process that sets them, i.e. in each client.

:func:`proxied_s3_repository` makes the server's repository instead, under
the scheme ``modelledger-s3`` (registered through the ``mlflow.artifact_repository``
entry point in ``pyproject.toml``). It stores to S3 with MLflow's own S3
repository but implements none of the presigned or multipart interfaces, so the
server advertises neither, refuses to mint presigned URLs, and every client
uploads and downloads through the server.
"""

from __future__ import annotations

import functools
from typing import Any

from modelledger.runtime.settings import PROXIED_S3_SCHEME

# The scheme of the server's --artifacts-destination. This module imports nothing heavy at its top:
# MLflow loads it (an entry point) in every process that resolves an artifact repository.


def s3_uri(artifact_uri: str) -> str:
    """The ``s3://`` location of a ``modelledger-s3://`` URI.

    Raises:
        ValueError: The URI has another scheme.
    """
    prefix = f"{PROXIED_S3_SCHEME}://"
    if not artifact_uri.startswith(prefix):
        raise ValueError(f"not a {PROXIED_S3_SCHEME}:// artifact URI: {artifact_uri!r}")
    return "s3://" + artifact_uri[len(prefix) :]


def proxied_s3_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> Any:
    """The repository of a ``modelledger-s3://`` URI (the entry point MLflow's registry calls)."""
    return _repository_class()(artifact_uri, tracking_uri, registry_uri)


@functools.cache
def _repository_class() -> type:
    # MLflow loads its entry points while its artifact modules are being imported: importing them
    # at the top of this module would be circular in a process that imports this module first.
    from mlflow.store.artifact.artifact_repo import ArtifactRepository
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

    class ProxiedS3ArtifactRepository(ArtifactRepository):
        """S3 artifact storage that hands out no presigned URL: the tracking server stays S3's only client.

        Each operation is MLflow's S3 repository on the same location (credentials,
        endpoint and CA from the server's ``AWS_*`` and ``MLFLOW_S3_*`` environment).
        """

        def __init__(self, artifact_uri: str, tracking_uri: str | None, registry_uri: str | None) -> None:
            super().__init__(artifact_uri, tracking_uri, registry_uri)
            self._s3 = S3ArtifactRepository(s3_uri(artifact_uri), tracking_uri=tracking_uri, registry_uri=registry_uri)

        def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
            self._s3.log_artifact(local_file, artifact_path)

        def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
            self._s3.log_artifacts(local_dir, artifact_path)

        def list_artifacts(self, path: str | None = None) -> list[Any]:
            return self._s3.list_artifacts(path)

        def _download_file(self, remote_file_path: str, local_path: str) -> None:
            self._s3._download_file(remote_file_path, local_path)

        def delete_artifacts(self, artifact_path: str | None = None) -> None:
            self._s3.delete_artifacts(artifact_path)

    return ProxiedS3ArtifactRepository
