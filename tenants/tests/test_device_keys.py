"""Device key validation: Ed25519 for signing and X25519 for encryption, in raw base64(url) or PEM, nothing else."""

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from tenants.device_keys import normalize_encryption_key, normalize_signing_key, signing_public_key

# --- key material, generated with `cryptography` (also imported by the device service and API tests) -----------

RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
PEM = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ed25519_pair() -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    private = ed25519.Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes(*RAW)


def x25519_raw() -> bytes:
    return x25519.X25519PrivateKey.generate().public_key().public_bytes(*RAW)


def ed25519_pem() -> tuple[str, bytes]:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(*PEM).decode(), public.public_bytes(*RAW)


def x25519_pem() -> tuple[str, bytes]:
    public = x25519.X25519PrivateKey.generate().public_key()
    return public.public_bytes(*PEM).decode(), public.public_bytes(*RAW)


def rsa_pem() -> str:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(*PEM).decode()


def p256_pem() -> str:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*PEM).decode()


def device_keys() -> dict[str, str]:
    """A valid (signing, encryption) pair as the API takes them."""
    return {"public_key_signing": b64url(ed25519_pair()[1]), "public_key_encryption": b64url(x25519_raw())}


def _encodings(raw: bytes) -> list[str]:
    return [
        b64url(raw),  # unpadded base64url, the stored form
        base64.urlsafe_b64encode(raw).decode(),  # padded base64url
        base64.b64encode(raw).decode(),  # standard base64, padded
        base64.b64encode(raw).decode().rstrip("="),  # standard base64, unpadded
        f"  {b64url(raw)}\n",  # surrounding whitespace
    ]


def test_signing_key_every_raw_encoding_normalises_to_base64url() -> None:
    for _ in range(20):  # enough keys that some contain '+' '/' '-' '_'
        _, raw = ed25519_pair()
        for text in _encodings(raw):
            assert normalize_signing_key(text) == b64url(raw)


def test_encryption_key_every_raw_encoding_normalises_to_base64url() -> None:
    for _ in range(20):
        raw = x25519_raw()
        for text in _encodings(raw):
            assert normalize_encryption_key(text) == b64url(raw)


def test_pem_keys_are_accepted() -> None:
    pem, raw = ed25519_pem()
    assert normalize_signing_key(pem) == b64url(raw)
    pem, raw = x25519_pem()
    assert normalize_encryption_key(pem) == b64url(raw)


@pytest.mark.parametrize("normalize", [normalize_signing_key, normalize_encryption_key])
def test_rsa_and_p256_pem_are_refused(normalize: object) -> None:
    for pem in (rsa_pem(), p256_pem()):
        with pytest.raises(ValueError, match="PEM holds"):
            normalize(pem)


def test_key_types_are_not_interchangeable_as_pem() -> None:
    x_pem, _ = x25519_pem()
    ed_pem, _ = ed25519_pem()
    with pytest.raises(ValueError, match="X25519PublicKey"):
        normalize_signing_key(x_pem)
    with pytest.raises(ValueError, match="Ed25519PublicKey"):
        normalize_encryption_key(ed_pem)


@pytest.mark.parametrize("length", [0, 1, 16, 31, 33, 64])
@pytest.mark.parametrize("normalize", [normalize_signing_key, normalize_encryption_key])
def test_wrong_length_is_refused(normalize: object, length: int) -> None:
    text = b64url(b"\x01" * length)
    with pytest.raises(ValueError):
        normalize(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not a key",
        "!!!!",
        "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB\n-----END PRIVATE KEY-----\n",
    ],
)
@pytest.mark.parametrize("normalize", [normalize_signing_key, normalize_encryption_key])
def test_garbage_is_refused(normalize: object, text: str) -> None:
    with pytest.raises(ValueError):
        normalize(text)


@pytest.mark.parametrize("junk", ["@@@", " !! ", "**", "\n", ".", "$"])
def test_characters_outside_the_base64_alphabet_are_refused(junk: str) -> None:
    """A valid key with junk mixed in is not silently accepted (the decoder must not drop characters)."""
    _, raw = ed25519_pair()
    text = b64url(raw)
    for candidate in (text[:10] + junk + text[10:], junk + text if junk.strip() else text[:5] + junk + text[5:]):
        with pytest.raises(ValueError):
            normalize_signing_key(candidate)
    with pytest.raises(ValueError):
        normalize_encryption_key(b64url(x25519_raw())[:20] + junk + "A")


@pytest.mark.parametrize("value", [None, 42, 3.5, b"\x00" * 32, ["abc"], {"k": "v"}, True])
@pytest.mark.parametrize("normalize", [normalize_signing_key, normalize_encryption_key])
def test_non_strings_are_refused(normalize: object, value: object) -> None:
    with pytest.raises(ValueError):
        normalize(value)


def test_stored_signing_key_verifies_the_devices_signatures() -> None:
    private, raw = ed25519_pair()
    stored = normalize_signing_key(base64.b64encode(raw).decode())
    verifier = signing_public_key(stored)
    verifier.verify(private.sign(b"hello"), b"hello")
    with pytest.raises(InvalidSignature):
        verifier.verify(private.sign(b"hello"), b"hellO")
