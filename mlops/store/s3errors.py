"""What an S3 refusal says: its error code, and the codes that mean "nothing is there".

The store is a library over a boto3 client; these two facts are all it needs
to know about S3's errors, and they belong to no server.
"""

from __future__ import annotations

# The answers that mean the object or version is not there (MinIO answers a delete marker's version 405).
NOT_THERE = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound", "MethodNotAllowed", "405"})


def error_code(exc: Exception) -> str:
    """The S3 error code of a refusal (``NoSuchKey``, ``PreconditionFailed``, ...); empty if none."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
