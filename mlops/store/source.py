"""Where a model to anchor comes from: a local folder, or an MLflow artifact URI fetched into a private folder."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse


class SourceError(Exception):
    """The source cannot be fetched (names the URI and the cause)."""


def is_artifact_uri(source: str) -> bool:
    """True for a URI with a scheme (``runs:/``, ``models:/``, ``mlflow-artifacts:/``, ``s3://``...), not a path."""
    scheme = urlparse(source).scheme
    return len(scheme) > 1  # one letter would be a Windows drive, not a scheme


@contextlib.contextmanager
def local_folder(
    source: str | Path, scratch: str | Path | None = None, tracking_uri: str | None = None
) -> Iterator[Path]:
    """Yields a local folder that holds the model at ``source``.

    A local path is used in place. An MLflow artifact URI is downloaded with
    MLflow's own client (``tracking_uri``, else the usual MLFLOW_* settings)
    into a new folder of mode 0700 under ``scratch`` (default: the
    system temporary folder), which is removed afterwards. A URI naming one
    file yields a folder holding only that file.

    Raises:
        SourceError: MLflow cannot resolve or download the URI.
    """
    if not is_artifact_uri(str(source)) or Path(source).exists():
        yield Path(source)
        return
    uri = str(source)
    tmp = Path(tempfile.mkdtemp(prefix="modelledger-fetch-", dir=scratch))  # mode 0700
    try:
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=str(tmp / "model"), tracking_uri=tracking_uri
                )
            )
        except (MlflowException, OSError) as exc:
            raise SourceError(f"cannot fetch {uri} from MLflow: {exc}") from exc
        if local.is_dir():
            yield local
        else:
            # One file: anchor it alone, in a folder of its own.
            folder = tmp / "file"
            folder.mkdir()
            local.rename(folder / local.name)
            yield folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
