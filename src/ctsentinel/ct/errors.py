"""Error types of the pure core. Each carries a one-line message naming what was wrong."""

from ctsentinel.errors import Error


class CTError(Error):
    """Base of every error raised by ctsentinel.ct and ctsentinel.certs."""


class DecodeError(CTError):
    """Malformed bytes, JSON or text: a TLS structure, tile, note or response."""


class ProofError(CTError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


class SignatureError(CTError):
    """A signature does not verify, or its key or algorithm is not supported."""
