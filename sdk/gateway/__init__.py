"""The Gateway protocol: identities and signing, proposals, transactions, commits, events, errors."""
