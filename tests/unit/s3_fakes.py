"""An S3 bucket fake for unit tests: keeps what is PUT and honours ``If-None-Match`` (real S3: tests/integration)."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError


class ConditionalBucket:
    """Keeps what is PUT, honours If-None-Match, and records each request as (operation, key)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def head_object(self, Key: str, **kw: Any) -> dict[str, Any]:
        with self._lock:
            self.requests.append(("HEAD", Key))
            if Key not in self.objects:
                raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
            return self.objects[Key]

    def put_object(self, Key: str, Body: Any, **kw: Any) -> dict[str, Any]:
        with self._lock:
            self.requests.append(("PUT", Key))
            if kw.get("IfNoneMatch") == "*" and Key in self.objects:
                raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "taken"}}, "PutObject")
            self.objects[Key] = {
                "VersionId": f"v{len(self.requests)}",
                "ChecksumSHA256": kw["ChecksumSHA256"],
                "ContentLength": len(Body),
                "ObjectLockMode": kw["ObjectLockMode"],
                "ObjectLockRetainUntilDate": kw["ObjectLockRetainUntilDate"],
            }
            return {"VersionId": self.objects[Key]["VersionId"]}


class _Body:
    """A GET's body: ``read`` and ``iter_chunks``, as botocore's StreamingBody has."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data

    def iter_chunks(self, size: int) -> Any:
        for i in range(0, len(self._data), size):
            yield self._data[i : i + size]


def _missing(operation: str, delete_marker: bool = False) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": "404", "Message": "Not Found"}}
    if delete_marker:
        response["ResponseMetadata"] = {"HTTPHeaders": {"x-amz-delete-marker": "true"}}
    return ClientError(response, operation)  # type: ignore[arg-type]


class VersionedBucket:
    """A versioned, Object Lock bucket: every PUT adds a version, a DELETE without a version id adds a delete
    marker, a read without a version id gets the newest (404 on a delete marker, as S3 answers)."""

    def __init__(self) -> None:
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._count = 0

    def _new_id(self) -> str:
        self._count += 1
        return f"v{self._count:04d}"

    def _find(self, key: str, version_id: str | None, operation: str) -> dict[str, Any]:
        stack = self.versions.get(key, [])
        if version_id is None:
            if not stack:
                raise _missing(operation)
            if stack[-1].get("DeleteMarker"):
                raise _missing(operation, delete_marker=True)
            return stack[-1]
        for v in stack:
            if v["VersionId"] == version_id:
                if v.get("DeleteMarker"):
                    raise ClientError({"Error": {"Code": "MethodNotAllowed", "Message": "a delete marker"}}, operation)
                return v
        raise ClientError({"Error": {"Code": "NoSuchVersion", "Message": "no such version"}}, operation)

    def put_object(self, Key: str, Body: Any, **kw: Any) -> dict[str, Any]:
        data = bytes(Body)
        with self._lock:
            stack = self.versions.setdefault(Key, [])
            if kw.get("IfNoneMatch") == "*" and stack and not stack[-1].get("DeleteMarker"):
                raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "taken"}}, "PutObject")
            version = {
                "VersionId": self._new_id(),
                "Body": data,
                "ContentLength": len(data),
                "ObjectLockMode": kw.get("ObjectLockMode"),
                "ObjectLockRetainUntilDate": kw.get("ObjectLockRetainUntilDate"),
            }
            if "ChecksumSHA256" in kw:
                version["ChecksumSHA256"] = kw["ChecksumSHA256"]
            stack.append(version)
            return {"VersionId": version["VersionId"]}

    def delete_object(self, Key: str, VersionId: str | None = None, **kw: Any) -> dict[str, Any]:
        assert VersionId is None, "locked versions cannot be deleted; only a delete marker can be placed"
        with self._lock:
            marker = {"VersionId": self._new_id(), "DeleteMarker": True}
            self.versions.setdefault(Key, []).append(marker)
            return {"DeleteMarker": True, "VersionId": marker["VersionId"]}

    def head_object(self, Key: str, VersionId: str | None = None, **kw: Any) -> dict[str, Any]:
        with self._lock:
            v = self._find(Key, VersionId, "HeadObject")
            return {k: val for k, val in v.items() if k != "Body" and val is not None}

    def get_object(self, Key: str, VersionId: str | None = None, **kw: Any) -> dict[str, Any]:
        with self._lock:
            v = self._find(Key, VersionId, "GetObject")
            return {"Body": _Body(v["Body"]), "ContentLength": v["ContentLength"], "VersionId": v["VersionId"]}

    def put_object_retention(self, Key: str, VersionId: str, Retention: dict[str, Any], **kw: Any) -> dict[str, Any]:
        with self._lock:
            v = self._find(Key, VersionId, "PutObjectRetention")
            v["ObjectLockMode"], v["ObjectLockRetainUntilDate"] = Retention["Mode"], Retention["RetainUntilDate"]
            return {}
