"""The off-chain store: the S3 server and anchored bucket, digests, signatures, uploads and verification."""
