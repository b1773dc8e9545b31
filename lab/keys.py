"""SSH keys the lab makes: the operator's key, each host's and each simulated device's host key."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def ed25519_keypair(comment: str) -> tuple[bytes, str]:
    """A new ed25519 key: the private key in OpenSSH's PEM format, and its authorized_keys line ending in `comment`."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}\n"
