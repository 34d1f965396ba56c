"""ModelLedger's Python client for Hyperledger Fabric's Gateway API.

Not built yet: see issue 4. This package exists so the ``modelledger.sdk``
namespace is in place from the start.
"""
