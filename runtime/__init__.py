"""The runtime every ModelLedger process shares: supervision, one server lifecycle and status, settings, TLS."""
