"""The MLflow side of ModelLedger, and the ``modelledger`` command line."""
