"""Reading a version's files for an anchoring job: streamed from MLflow's bucket, or downloaded through MLflow."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

from modelledger.mlops.bridge.provenance import MAX_PROVENANCE_FILE, PROVENANCE_FILES
from modelledger.mlops.store.digest import list_files
from modelledger.mlops.store.source import SourceError, download_s3_objects, list_s3_tree, local_folder
from modelledger.mlops.store.upload import LocalFile, ModelFile


@contextlib.contextmanager
def version_files(
    pool: ThreadPoolExecutor, job_key: str, uri: str, s3: Any | None, scratch: Path, tracking_uri: str
) -> Iterator[tuple[list[ModelFile], Callable[[], Path], list[str]]]:
    """The version's files, a call giving the folder of their ``MLmodel`` and ``requirements.txt``, and notes.

    Args:
        pool: Where the provenance files are downloaded, beside the upload.
        job_key: The job, for messages.
        uri: The allowlisted location of the files.
        s3: A client of MLflow's bucket when ``uri`` is on it (``s3://``); None reads through MLflow.
        scratch: A private folder, removed by the caller afterwards.
        tracking_uri: The tracking server MLflow's client downloads from.

    From MLflow's bucket the files are listed once and streamed into the
    upload; only the two small provenance files are downloaded, beside the
    upload (larger ones are left out of the provenance, and a note says
    so). Otherwise MLflow's client downloads them into ``scratch``. No
    files at all is worth retrying: they may not be visible yet.
    """
    if s3 is not None:
        objects = list_s3_tree(s3, uri)
        wanted = [o for o in objects if o.rel in PROVENANCE_FILES]
        small = [o for o in wanted if o.size <= MAX_PROVENANCE_FILE]
        notes = [
            f"{o.rel} over {MAX_PROVENANCE_FILE} bytes not read for the provenance" for o in wanted if o not in small
        ]
        provenance = pool.submit(download_s3_objects, small, scratch / "provenance")
        try:
            yield list(objects), provenance.result, notes
        finally:
            provenance.cancel()  # not started yet (the upload failed first): never starts
            futures_wait([provenance])  # nothing may still write into scratch once it is removed
        return
    with local_folder(uri, scratch=scratch, tracking_uri=tracking_uri) as folder:
        files = list_files(folder)
        if not files:
            raise SourceError(f"the artifacts of {job_key} at {uri} hold no files")
        yield [LocalFile(tf) for tf in files], lambda: folder, []
