"""The MLflow bridge: the tracking server, the webhook receiver, the outbox, the anchoring worker, the reconciler."""
