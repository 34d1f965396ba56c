"""A version's files for an anchoring job: where they are, then streamed from MLflow's bucket or through MLflow."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelledger.mlops.bridge.anchor_parts import AnchorParts
from modelledger.mlops.bridge.artifacts import resolve_download_uri, stored_location
from modelledger.mlops.bridge.provenance import MAX_PROVENANCE_FILE, PROVENANCE_FILES
from modelledger.mlops.store.digest import list_files
from modelledger.mlops.store.source import CopyingFile, SourceError, list_s3_tree, local_folder
from modelledger.mlops.store.upload import LocalFile, ModelFile


def locate_files(parts: AnchorParts, mlflow: Any, name: str, version: str) -> tuple[str, Any | None]:
    """The allowlisted URI of a version's files, and the S3 client to read it with (None: through MLflow).

    Args:
        parts: The allowlist, and MLflow's bucket when it is on this stack's S3.
        mlflow: The job's client (:class:`~modelledger.mlops.bridge.mlflow_api.RunReadOnce`): a ``runs:/``
            source's run is read here.
        name: The registered model.
        version: Its version.
    """
    uri = parts.allowlist.check(resolve_download_uri(mlflow, name, version))
    if parts.artifacts_s3 is not None:
        direct = stored_location(uri, parts.artifacts_destination)
        if direct.startswith("s3://"):
            return parts.allowlist.check(direct), parts.artifacts_s3
    return uri, None


@contextlib.contextmanager
def version_files(
    job_key: str, uri: str, s3: Any | None, scratch: Path, tracking_uri: str
) -> Iterator[tuple[list[ModelFile], Callable[[], Path], list[str]]]:
    """The version's files, a call giving the folder of their ``MLmodel`` and ``requirements.txt``, and notes.

    Args:
        job_key: The job, for messages.
        uri: The allowlisted location of the files.
        s3: A client of MLflow's bucket when ``uri`` is on it (``s3://``); None reads through MLflow.
        scratch: A private folder, removed by the caller afterwards.
        tracking_uri: The tracking server MLflow's client downloads from.

    From MLflow's bucket the files are listed once and streamed into the
    upload (or digest); the two small provenance files are also written into
    ``scratch`` as they are read, so the folder is whole once every file has
    been read (larger ones are left out of the provenance, and a note says
    so). Otherwise MLflow's client downloads them into ``scratch``. No files
    at all is worth retrying: they may not be visible yet.
    """
    if s3 is not None:
        objects = list_s3_tree(s3, uri)
        wanted = [o for o in objects if o.rel in PROVENANCE_FILES]
        small = [o for o in wanted if o.size <= MAX_PROVENANCE_FILE]
        notes = [
            f"{o.rel} over {MAX_PROVENANCE_FILE} bytes not read for the provenance" for o in wanted if o not in small
        ]
        kept = scratch / "provenance"
        kept.mkdir(mode=0o700)
        # One read of each object: the provenance files are copied out of the stream that is hashed and stored.
        files: list[ModelFile] = [CopyingFile(o, kept / o.rel) if o in small else o for o in objects]
        yield files, lambda: kept, notes
        return
    with local_folder(uri, scratch=scratch, tracking_uri=tracking_uri) as folder:
        files = list_files(folder)
        if not files:
            raise SourceError(f"the artifacts of {job_key} at {uri} hold no files")
        yield [LocalFile(tf) for tf in files], lambda: folder, []
