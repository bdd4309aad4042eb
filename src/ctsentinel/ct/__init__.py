"""The Certificate Transparency protocol, pure: Merkle trees, TLS encodings, signatures, notes, tiles."""
