"""The MLflow side's servers (MinIO, the MLflow tracking server, the bridge), each under the runtime lifecycle."""
