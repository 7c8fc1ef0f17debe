"""Crypto and JWT helpers (PYTHON_API.md §3.1, §3.2) checked against
independent implementations: every expected value is computed here with the
``cryptography`` package, ``hmac`` or ``hashlib``, never copied in. Then bad
input: wrong key sizes, short or tampered ciphertext, invalid keys, and
tokens the JWT rules must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wse_server import (
    rust_aes_gcm_decrypt,
    rust_aes_gcm_encrypt,
    rust_ecdh_derive_shared_secret,
    rust_ecdh_generate_keypair,
    rust_hmac_sha256,
    rust_jwt_decode,
    rust_jwt_encode,
    rust_sha256,
    rust_sign_message,
)

P256 = ec.SECP256R1()
# Order of the P-256 group (SEC 2 §2.4.2): private scalars are 1..N-1.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
HKDF_INFO = b"wse-encryption/aes-gcm-key"
DECRYPT_FAILED = r"^Decrypt failed: aead::Error$"
SECRET = b"s" * 32
PEM = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()


# --- ECDH P-256 + HKDF-SHA256 ------------------------------------------------


def expected_aes_key(private: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    """The spec's derivation, done by ``cryptography``."""
    shared = private.exchange(ec.ECDH(), peer)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(shared)


def private_from_raw(raw: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(raw, "big"), P256)


def raw_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes(32, "big")


def sec1(key: ec.EllipticCurvePublicKey, compressed: bool = False) -> bytes:
    form = serialization.PublicFormat.CompressedPoint if compressed else serialization.PublicFormat.UncompressedPoint
    return key.public_bytes(serialization.Encoding.X962, form)


def public_from_sec1(point: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(P256, point)


def test_generated_keypair_is_a_p256_key_pair() -> None:
    private, public = rust_ecdh_generate_keypair()
    assert isinstance(private, bytes) and isinstance(public, bytes)
    assert len(private) == 32 and len(public) == 65
    # The public half is the uncompressed point of the private scalar.
    assert public == sec1(private_from_raw(private).public_key())
    assert rust_ecdh_generate_keypair()[0] != private


def test_rust_private_key_with_a_cryptography_peer() -> None:
    for _ in range(8):
        private, public = rust_ecdh_generate_keypair()
        peer = ec.generate_private_key(P256)
        key = rust_ecdh_derive_shared_secret(private, sec1(peer.public_key()))
        assert key == expected_aes_key(private_from_raw(private), peer.public_key())
        # What the peer derives on its side with the Rust public key.
        assert key == expected_aes_key(peer, public_from_sec1(public))


def test_cryptography_private_key_with_a_rust_peer() -> None:
    for _ in range(8):
        _, public = rust_ecdh_generate_keypair()
        mine = ec.generate_private_key(P256)
        assert rust_ecdh_derive_shared_secret(raw_private(mine), public) == expected_aes_key(
            mine, public_from_sec1(public)
        )


def test_small_private_scalar_with_leading_zero_bytes() -> None:
    mine = ec.derive_private_key(12345, P256)
    peer = ec.generate_private_key(P256)
    raw = raw_private(mine)
    assert raw[:30] == bytes(30)
    assert rust_ecdh_derive_shared_secret(raw, sec1(peer.public_key())) == expected_aes_key(mine, peer.public_key())


def test_compressed_peer_points_give_the_same_key() -> None:
    private, _ = rust_ecdh_generate_keypair()
    peer = ec.generate_private_key(P256).public_key()
    compressed = sec1(peer, compressed=True)
    assert len(compressed) == 33
    expected = expected_aes_key(private_from_raw(private), peer)
    assert rust_ecdh_derive_shared_secret(private, compressed) == expected
    assert rust_ecdh_derive_shared_secret(private, sec1(peer)) == expected


@pytest.mark.parametrize(
    "private_key",
    [
        b"",
        b"\x01" * 16,
        b"\x01" * 33,
        b"\x01" * 64,
        bytes(32),  # zero
        P256_ORDER.to_bytes(32, "big"),  # the group order itself
        b"\xff" * 32,  # above the order
    ],
    ids=["empty", "16-bytes", "33-bytes", "64-bytes", "zero", "order", "all-ff"],
)
def test_invalid_private_keys(private_key: bytes) -> None:
    _, public = rust_ecdh_generate_keypair()
    with pytest.raises(ValueError, match=r"^Invalid private key: "):
        rust_ecdh_derive_shared_secret(private_key, public)


def _x_not_on_the_curve() -> bytes:
    """A compressed point whose x-coordinate has no y on P-256 (as
    ``cryptography`` judges it)."""
    for x in range(1, 100):
        candidate = b"\x02" + x.to_bytes(32, "big")
        try:
            public_from_sec1(candidate)
        except ValueError:
            return candidate
    raise AssertionError("every small x is on the curve")


def _invalid_peer_points() -> dict[str, bytes]:
    point = sec1(ec.generate_private_key(P256).public_key())
    off_curve = point[:-1] + bytes([point[-1] ^ 1])
    p384 = sec1(ec.generate_private_key(ec.SECP384R1()).public_key())
    return {
        "empty": b"",
        "identity": b"\x00",
        "off-curve": off_curve,
        "bad-tag": b"\x05" + point[1:],
        "truncated": point[:64],
        "too-long": point + b"\x00",
        "x-only": point[1:33],
        "compressed-x-off-curve": _x_not_on_the_curve(),
        "p384-point": p384,
    }


@pytest.mark.parametrize("name", list(_invalid_peer_points()))
def test_invalid_peer_public_keys(name: str) -> None:
    peer = _invalid_peer_points()[name]
    private, _ = rust_ecdh_generate_keypair()
    with pytest.raises(ValueError, match=r"^Invalid peer public key: "):
        rust_ecdh_derive_shared_secret(private, peer)


# --- AES-256-GCM -------------------------------------------------------------

PLAINTEXTS = [b"", b"x", b"hello world", bytes(range(256)) * 64, os.urandom(1 << 20)]


@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=lambda p: f"{len(p)}-bytes")
def test_rust_ciphertext_opens_with_cryptography(plaintext: bytes) -> None:
    key = AESGCM.generate_key(bit_length=256)
    sealed = rust_aes_gcm_encrypt(key, plaintext)
    assert len(sealed) == 12 + len(plaintext) + 16
    iv, body = sealed[:12], sealed[12:]
    assert AESGCM(key).decrypt(iv, body, None) == plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=lambda p: f"{len(p)}-bytes")
def test_cryptography_ciphertext_opens_with_rust(plaintext: bytes) -> None:
    key = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    assert rust_aes_gcm_decrypt(key, iv + AESGCM(key).encrypt(iv, plaintext, None)) == plaintext


def test_encryption_uses_no_associated_data() -> None:
    key = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    with pytest.raises(RuntimeError, match=DECRYPT_FAILED):
        rust_aes_gcm_decrypt(key, iv + AESGCM(key).encrypt(iv, b"payload", b"aad"))


def test_every_encryption_has_a_fresh_iv() -> None:
    key = AESGCM.generate_key(bit_length=256)
    ivs = {rust_aes_gcm_encrypt(key, b"same")[:12] for _ in range(200)}
    assert len(ivs) == 200


@pytest.mark.parametrize("key_len", [0, 16, 24, 31, 33, 64])
def test_keys_other_than_32_bytes_are_value_errors(key_len: int) -> None:
    key = os.urandom(key_len)
    with pytest.raises(ValueError):
        rust_aes_gcm_encrypt(key, b"x")
    with pytest.raises(ValueError):
        rust_aes_gcm_decrypt(key, os.urandom(40))


def test_input_shorter_than_iv_and_tag_is_a_value_error() -> None:
    key = AESGCM.generate_key(bit_length=256)
    sealed = rust_aes_gcm_encrypt(key, b"")
    assert len(sealed) == 28
    for n in range(28):
        with pytest.raises(ValueError):
            rust_aes_gcm_decrypt(key, sealed[:n])
    # 28 bytes is long enough to be checked: a wrong tag is then a
    # RuntimeError, not a ValueError.
    with pytest.raises(RuntimeError, match=DECRYPT_FAILED):
        rust_aes_gcm_decrypt(key, bytes(28))


def test_any_flipped_bit_fails_authentication() -> None:
    key = AESGCM.generate_key(bit_length=256)
    sealed = rust_aes_gcm_encrypt(key, b"attack at dawn")
    tag_start = len(sealed) - 16
    positions = [0, 11, 12, tag_start - 1] + list(range(tag_start, len(sealed)))  # IV, ciphertext, every tag byte
    for pos in positions:
        for bit in range(8):
            tampered = bytearray(sealed)
            tampered[pos] ^= 1 << bit
            with pytest.raises(RuntimeError, match=DECRYPT_FAILED):
                rust_aes_gcm_decrypt(key, bytes(tampered))


def test_wrong_key_truncation_and_extension_fail_authentication() -> None:
    key = AESGCM.generate_key(bit_length=256)
    sealed = rust_aes_gcm_encrypt(key, b"attack at dawn")
    for bad_key, data in [
        (AESGCM.generate_key(bit_length=256), sealed),
        (key, sealed[:-1]),
        (key, sealed + b"\x00"),
    ]:
        with pytest.raises(RuntimeError, match=DECRYPT_FAILED):
            rust_aes_gcm_decrypt(bad_key, data)
    assert rust_aes_gcm_decrypt(key, sealed) == b"attack at dawn"


# --- HMAC, SHA-256, message signatures ---------------------------------------

DATA = [b"", b"abc", os.urandom(10_000)]


@pytest.mark.parametrize("key_len", [0, 1, 32, 63, 64, 65, 200])  # around the 64-byte block size
def test_hmac_sha256_matches_python(key_len: int) -> None:
    key = os.urandom(key_len)
    for data in DATA:
        mac = rust_hmac_sha256(key, data)
        assert isinstance(mac, bytes) and len(mac) == 32
        assert mac == hmac.new(key, data, hashlib.sha256).digest()


def test_sha256_is_lowercase_hex_of_hashlib() -> None:
    for data in [*DATA, os.urandom(1 << 20)]:
        assert rust_sha256(data) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("payload", ['{"a":1}', "", '{"msg":"héllo ✓ 世界"}', "x" * 100_000])
@pytest.mark.parametrize("secret", [b"", b"sec", os.urandom(100)])
def test_sign_message_is_hmac_of_the_hex_digest(payload: str, secret: bytes) -> None:
    digest_hex = hashlib.sha256(payload.encode()).hexdigest()
    assert rust_sign_message(payload, secret) == hmac.new(secret, digest_hex.encode(), hashlib.sha256).hexdigest()


# --- JWT -----------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS."""
    header, claims, signature = token.split(".")
    return (json.loads(unb64url(header)), json.loads(unb64url(claims)),
            f"{header}.{claims}".encode(), unb64url(signature))


def build_token(header: dict[str, Any], claims: dict[str, Any] | bytes, sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS made without the module under test."""
    body = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(body)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def hs256(key: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(key, data, hashlib.sha256).digest()


def rs256(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def es256(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def claims_valid_for(seconds: int = 300, **extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + seconds, **extra}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(P256)


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
                fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(PEM, fmt, NO_PASSWORD)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_hs256_token_is_the_hmac_of_its_segments() -> None:
    claims = claims_valid_for(n=1, nested={"a": [1, 2.5, None, True]}, text="é")
    header, body, signing_input, signature = split(rust_jwt_encode(claims, SECRET))
    assert header["alg"] == "HS256" and "kid" not in header
    assert body == claims  # signed as given: nothing added
    assert signature == hmac.new(SECRET, signing_input, hashlib.sha256).digest()
    header, _, _, _ = split(rust_jwt_encode(claims, SECRET, key_id="key-1"))
    assert header["kid"] == "key-1"


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
                         ids=["pkcs8", "pkcs1"])
def test_rs256_token_is_the_pkcs1v15_signature(rsa_key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> None:
    claims = claims_valid_for()
    token = rust_jwt_encode(claims, private_pem(rsa_key, fmt), "RS256", "rsa-1")
    header, body, signing_input, signature = split(token)
    assert (header["alg"], header["kid"], body) == ("RS256", "rsa-1", claims)
    rsa_key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    # PKCS#1 v1.5 is deterministic: the same bytes cryptography produces.
    assert signature == rs256(rsa_key)(signing_input)
    assert rust_jwt_decode(token, public_pem(rsa_key), "RS256") == claims


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8,
                                 serialization.PrivateFormat.TraditionalOpenSSL])  # SEC1
def test_es256_token_is_a_raw_r_s_ecdsa_signature(ec_key: ec.EllipticCurvePrivateKey,
                                                  fmt: serialization.PrivateFormat) -> None:
    claims = claims_valid_for()
    token = rust_jwt_encode(claims, private_pem(ec_key, fmt), "ES256")
    header, body, signing_input, signature = split(token)
    assert (header["alg"], body) == ("ES256", claims)
    assert len(signature) == 64  # JWS (RFC 7518 §3.4): r ‖ s, not DER
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    ec_key.public_key().verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    assert rust_jwt_decode(token, public_pem(ec_key), "ES256") == claims


def test_tokens_built_with_cryptography_are_accepted(rsa_key: rsa.RSAPrivateKey,
                                                     ec_key: ec.EllipticCurvePrivateKey) -> None:
    claims = claims_valid_for(role="admin")
    cases: list[tuple[str, bytes, Callable[[bytes], bytes]]] = [
        ("HS256", SECRET, hs256(SECRET)),
        ("RS256", public_pem(rsa_key), rs256(rsa_key)),
        ("ES256", public_pem(ec_key), es256(ec_key)),
    ]
    for alg, verify_key, sign in cases:
        token = build_token({"alg": alg, "typ": "JWT"}, claims, sign)
        assert rust_jwt_decode(token, verify_key, alg) == claims, alg
        # The same signature over other claims: refused.
        forged_body = b64url(json.dumps({**claims, "role": "root"}).encode())
        head, _, sig = token.split(".")
        assert rust_jwt_decode(f"{head}.{forged_body}.{sig}", verify_key, alg) is None, alg


def test_the_configured_algorithm_wins_over_the_header(rsa_key: rsa.RSAPrivateKey,
                                                       ec_key: ec.EllipticCurvePrivateKey) -> None:
    claims = claims_valid_for()
    rsa_public = public_pem(rsa_key)
    hs_token = rust_jwt_encode(claims, SECRET)
    rs_token = rust_jwt_encode(claims, private_pem(rsa_key), "RS256")
    es_token = rust_jwt_encode(claims, private_pem(ec_key), "ES256")
    assert rust_jwt_decode(hs_token, rsa_public, "RS256") is None
    assert rust_jwt_decode(rs_token, SECRET, "HS256") is None
    assert rust_jwt_decode(es_token, rsa_public, "RS256") is None
    assert rust_jwt_decode(rs_token, public_pem(ec_key), "ES256") is None
    # Algorithm confusion: HS256 keyed with the server's public RSA PEM.
    confused = build_token({"alg": "HS256", "typ": "JWT"}, claims, hs256(rsa_public))
    assert rust_jwt_decode(confused, rsa_public, "RS256") is None
    # Unsigned tokens.
    unsigned = f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(claims).encode())}."
    for alg, key in [("HS256", SECRET), ("RS256", rsa_public)]:
        assert rust_jwt_decode(unsigned, key, alg) is None


def test_unsupported_algorithms() -> None:
    claims = claims_valid_for()
    for alg in ["HS512", "none", "hs256", "PS256", ""]:
        with pytest.raises(ValueError, match=rf"^Unsupported algorithm: {alg}"):
            rust_jwt_encode(claims, SECRET, alg)
    token = rust_jwt_encode(claims, SECRET)
    for alg in ["HS512", "none", "hs256", "PS256", ""]:
        assert rust_jwt_decode(token, SECRET, alg) is None  # None, not an exception


def test_exp_is_required_and_has_30_seconds_of_leeway() -> None:
    now = int(time.time())
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"exp": now + 60}, True),
        ({"exp": now - 10}, True),  # within the leeway
        ({"exp": now - 120}, False),
        ({}, False),  # exp is required
        ({"exp": "tomorrow"}, False),
        ({"exp": now + 60, "nbf": now + 10}, True),  # within the leeway
        ({"exp": now + 60, "nbf": now + 120}, False),
        ({"exp": now + 60, "nbf": now - 60}, True),
    ]
    for claims, accepted in cases:
        token = rust_jwt_encode(claims, SECRET)
        assert rust_jwt_decode(token, SECRET) == (claims if accepted else None), claims


def test_wrong_secret_previous_secret_and_key_id() -> None:
    old, new = b"o" * 32, b"n" * 32
    claims = claims_valid_for()
    token = rust_jwt_encode(claims, old, key_id="old")
    assert rust_jwt_decode(token, new) is None
    assert rust_jwt_decode(token, new, previous_secret=old) == claims
    assert rust_jwt_decode(token, old, key_id="old") == claims
    assert rust_jwt_decode(token, old, key_id="new") is None  # kid checked...
    assert rust_jwt_decode(token, new, key_id="new", previous_secret=old) == claims  # ...not on the retry
    assert rust_jwt_decode(rust_jwt_encode(claims, old), old, key_id="old") is None  # no kid at all
    expired = rust_jwt_encode({"exp": int(time.time()) - 120}, old)
    assert rust_jwt_decode(expired, new, previous_secret=old) is None


def test_issuer_and_audience() -> None:
    token = rust_jwt_encode(claims_valid_for(iss="wse", aud="api"), SECRET)
    assert rust_jwt_decode(token, SECRET, issuer="wse", audience="api") is not None
    assert rust_jwt_decode(token, SECRET, issuer="other") is None
    assert rust_jwt_decode(token, SECRET, audience="web") is None
    listed = rust_jwt_encode(claims_valid_for(aud=["web", "api"]), SECRET)
    assert rust_jwt_decode(listed, SECRET, audience="api") is not None
    assert rust_jwt_decode(listed, SECRET, audience="mobile") is None
    # A configured issuer or audience must be in the token (upstream let a
    # token without the claim through).
    assert rust_jwt_decode(listed, SECRET, issuer="wse") is None
    assert rust_jwt_decode(rust_jwt_encode(claims_valid_for(iss="wse"), SECRET), SECRET, audience="api") is None


def _hs256_token_of_length(length: int) -> tuple[str, dict[str, Any]]:
    shortest = len(rust_jwt_encode(claims_valid_for(pad=""), SECRET))
    start = max(0, (length - shortest) * 3 // 4 - 8)  # base64: 4 characters per 3 bytes
    for pad in range(start, start + 32):
        claims = claims_valid_for(pad="x" * pad)
        token = rust_jwt_encode(claims, SECRET)
        if len(token) == length:
            return token, claims
        if len(token) > length:
            break
    raise AssertionError(f"no token of exactly {length} bytes")


def test_tokens_longer_than_8192_bytes_are_refused() -> None:
    token, claims = _hs256_token_of_length(8192)
    assert rust_jwt_decode(token, SECRET) == claims
    token, _ = _hs256_token_of_length(8193)
    assert rust_jwt_decode(token, SECRET) is None


def test_hs256_secret_of_at_least_32_bytes() -> None:
    claims = claims_valid_for()
    assert rust_jwt_decode(rust_jwt_encode(claims, b"k" * 32), b"k" * 32) == claims
    with pytest.raises(RuntimeError, match=r"^JWT encode error: "):
        rust_jwt_encode(claims, b"k" * 31)
    with pytest.raises(RuntimeError, match=r"^JWT encode error: "):
        rust_jwt_encode(claims, b"")


def test_unusable_pem_keys(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> None:
    claims = claims_valid_for()
    garbage = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    for key, alg in [
        (b"not a pem", "RS256"),
        (b"not a pem", "ES256"),
        (garbage, "RS256"),
        (garbage, "ES256"),
        (private_pem(ec_key), "RS256"),  # the wrong kind of key
        (private_pem(rsa_key), "ES256"),
        (public_pem(rsa_key), "RS256"),  # a public key cannot sign
    ]:
        with pytest.raises(RuntimeError, match=r"^JWT encode error: "):
            rust_jwt_encode(claims, key, alg)
    rs_token = rust_jwt_encode(claims, private_pem(rsa_key), "RS256")
    es_token = rust_jwt_encode(claims, private_pem(ec_key), "ES256")
    for token, key, alg in [
        (rs_token, b"not a pem", "RS256"),
        (rs_token, garbage, "RS256"),
        (es_token, b"not a pem", "ES256"),
        (es_token, public_pem(rsa_key), "ES256"),
    ]:
        assert rust_jwt_decode(token, key, alg) is None


def test_malformed_tokens_decode_to_none() -> None:
    good = rust_jwt_encode(claims_valid_for(), SECRET)
    head, body, sig = good.split(".")
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "..",
        f"{head}.{body}",
        f"{head}.{body}.{sig}.extra",
        f"{head}.{body}.{sig[:-4]}",
        f"{head}.{body}!.{sig}",
        build_token({"alg": "HS256"}, b"not json", hs256(SECRET)),
        build_token({"alg": "HS256"}, b"[1, 2]", hs256(SECRET)),
        build_token({"alg": "HS256"}, {"exp": "never"}, hs256(SECRET)),
    ]:
        assert rust_jwt_decode(token, SECRET) is None, token
