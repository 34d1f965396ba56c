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
