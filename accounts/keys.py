"""RS256 key pair: generated once, loaded once per process."""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_BITS = 2048


class KeysExist(Exception):
    pass


def generate_key_pair(private_path: Path, public_path: Path, *, force: bool = False) -> None:
    """Write a new 2048-bit pair: PKCS#8 private PEM (0600) and SubjectPublicKeyInfo PEM."""
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        raise KeysExist(", ".join(str(p) for p in existing))
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for path, pem, mode in ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pem)
        path.chmod(mode)
    load_private_key.cache_clear()
    load_public_key.cache_clear()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"The JWT {what} key {path} does not exist: run `python manage.py generate_keys`."
        ) from None


@functools.cache
def load_private_key() -> RSAPrivateKey:
    key = serialization.load_pem_private_key(_read(settings.JWT_PRIVATE_KEY_PATH, "private"), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured(f"{settings.JWT_PRIVATE_KEY_PATH} is not an RSA private key.")
    return key


@functools.cache
def load_public_key() -> RSAPublicKey:
    key = serialization.load_pem_public_key(_read(settings.JWT_PUBLIC_KEY_PATH, "public"))
    if not isinstance(key, RSAPublicKey):
        raise ImproperlyConfigured(f"{settings.JWT_PUBLIC_KEY_PATH} is not an RSA public key.")
    return key
