"""Which artifact stores the bridge fetches from: an allowlist checked before any byte is fetched.

The registry says where a version's files are (``models:/m-…``, ``runs:/…``);
the bridge asks the registry for the concrete download URI and accepts only:

- ``mlflow-artifacts:/<path>`` served by *our* tracking server (no other host);
- ``s3://<bucket>/<key>`` in the MLflow artifacts bucket of this stack.

Anything else is refused: ``file://`` (the bridge's own disk), other hosts or
schemes, and paths with ``.`` or ``..`` segments, empty segments,
backslashes, control characters or percent-encoding that hides them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse


class SourceRefusedError(Exception):
    """The artifact URI is outside the allowlist (names the URI and the rule)."""


@dataclass(frozen=True)
class ArtifactAllowlist:
    """Where artifacts may come from.

    Attributes:
        tracking_netloc: ``host:port`` of our tracking server (``mlflow-artifacts://<this>/`` or no host).
        s3_buckets: S3 buckets that hold MLflow artifacts.
    """

    tracking_netloc: str
    s3_buckets: tuple[str, ...] = ()

    @classmethod
    def of(cls, tracking_uri: str, s3_buckets: Iterable[str] = ()) -> ArtifactAllowlist:
        return cls(urlparse(tracking_uri).netloc, tuple(s3_buckets))

    def check(self, uri: str) -> str:
        """Returns ``uri`` if it may be fetched.

        Raises:
            SourceRefusedError: It may not; the message says why.
        """
        if any(ord(c) < 32 or c == "\\" for c in uri):
            raise SourceRefusedError(f"{uri!r}: control characters or backslashes")
        parsed = urlparse(uri)
        if parsed.query or parsed.fragment or parsed.params:
            raise SourceRefusedError(f"{uri}: queries and fragments are not allowed")
        if parsed.scheme == "mlflow-artifacts":
            if parsed.netloc not in ("", self.tracking_netloc):
                raise SourceRefusedError(f"{uri}: served by another host than this stack's tracking server")
        elif parsed.scheme == "s3":
            if parsed.netloc not in self.s3_buckets:
                raise SourceRefusedError(f"{uri}: bucket {parsed.netloc!r} is not an MLflow artifact bucket here")
        else:
            raise SourceRefusedError(f"{uri}: scheme {parsed.scheme or '(none)'!r} is not an allowed artifact store")
        path = parsed.path
        for text in {path, unquote(path)}:
            segments = text.strip("/").split("/")
            if not text.strip("/") or any(s in ("", ".", "..") for s in segments):
                raise SourceRefusedError(f"{uri}: empty, '.' or '..' path segments")
        if any(enc in path.lower() for enc in ("%2f", "%5c", "%00")):
            raise SourceRefusedError(f"{uri}: percent-encoded separators or NUL")
        return uri


def stored_location(uri: str, destination: str) -> str:
    """The ``s3://`` location of an ``mlflow-artifacts:/`` URI, given the server's ``--artifacts-destination``.

    Our tracking server stores ``mlflow-artifacts:/<path>`` at
    ``<destination>/<path>``; reading it there saves the trip through the
    server. Other URIs (and any URI when ``destination`` is empty) are returned
    unchanged. Check the result against the allowlist like any other URI.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "mlflow-artifacts" or not destination:
        return uri
    return f"{destination.rstrip('/')}/{parsed.path.lstrip('/')}"


def resolve_download_uri(mlflow: Any, name: str, version: str, hops: int = 3) -> str:
    """Where the version's files really are: the registry's download URI with ``runs:/`` and ``models:/`` resolved.

    For a version registered from ``runs:/<run>/<path>``, MLflow's registry
    answers with that indirect URI; it stands for the run's artifact location
    plus the path. ``models:/m-<id>`` stands for the logged model's location.

    Raises:
        SourceRefusedError: More than ``hops`` indirections, or an indirect URI without a target.
    """
    uri = mlflow.get_model_version_download_uri(name, version)
    for _ in range(hops):
        parsed = urlparse(uri)
        rest = (parsed.netloc + parsed.path).strip("/")
        if parsed.scheme == "runs":
            run_id, _, path = rest.partition("/")
            if not run_id:
                raise SourceRefusedError(f"{uri}: no run id")
            base = mlflow.get_run(run_id).info.artifact_uri.rstrip("/")
            uri = f"{base}/{path}" if path else base
        elif parsed.scheme == "models":
            first, _, second = rest.partition("/")
            if first.startswith("m-") and not second:
                uri = mlflow.get_logged_model(first).artifact_location
            elif first and second:
                uri = mlflow.get_model_version_download_uri(first, second)
            else:
                raise SourceRefusedError(f"{uri}: not a model version or logged model")
        else:
            return uri
    raise SourceRefusedError(f"{uri}: more than {hops} indirections")
