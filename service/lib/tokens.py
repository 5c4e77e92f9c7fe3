"""Access tokens (JWTs PostgREST accepts) and refresh token strings.

Access tokens carry ``sub`` = the profile id, ``role`` = ``authenticated``,
``aud`` = ``XPBASE_JWT_AUDIENCE``, ``iss`` = ``XPBASE_JWT_ISSUER``, ``iat``,
``exp`` (at most 3600 seconds later), ``session_id`` (the refresh token
family) and ``app_metadata.role`` (``profiles.role``, read from the database by
the caller, never from anything a member can edit). They are signed with one
algorithm, chosen by ``XPBASE_JWT_ALGORITHM``:

- ``HS256`` with ``XPBASE_JWT_SECRET`` (Supabase's project JWT secret), at
  least 32 bytes;
- ``RS256`` (RSA, 2048 bits or more) or ``ES256`` (P-256) with
  ``XPBASE_JWT_PRIVATE_KEY``; the public key is published as a JWKS with a
  ``kid`` (its RFC 7638 thumbprint unless ``XPBASE_JWT_KEY_ID`` names one).

Verification accepts exactly the configured algorithm and key id, so
``alg: none``, HS/RS confusion and tokens signed by other keys are refused.

Refresh tokens are opaque: the first of a session is random
(``secrets.token_urlsafe``), each next one is HMAC-SHA256 of its parent under a
key derived from the signing key (HKDF). The database stores only SHA-256
hashes; deriving children lets a retry of the immediate parent within the
reuse grace window receive the same live token, as Supabase Auth does, without
ever storing a token in the clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import import_key as import_jwk

from xpbase.settings import Settings

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
MIN_RSA_BITS = 2048
MAX_ACCESS_TTL_SECONDS = 3600
MAX_REFRESH_TOKEN_CHARS = 128
# Clock skew allowed between the token's issued-at and expiry and the lifetime the service issues (seconds).
LIFETIME_LEEWAY_SECONDS = 60
_CHAIN_INFO = b"xpbase refresh token chain v1"


class SettingsError(ValueError):
    """A setting is present but unusable (the message says which and why)."""


class InvalidAccessToken(Exception):
    """An access token was refused; ``reason`` is a short text safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resolve_jwt_secret(settings: Settings) -> str:
    """The HS256 secret: ``XPBASE_JWT_SECRET``, or a development secret kept in the data dir.

    Raises SettingsError when the configured secret is shorter than 32 bytes.
    When none is configured, a random secret is created once in
    ``<data_dir>/jwt-secret`` (mode 0600) and a warning is logged: fine for a
    local run, never what a deployment sharing tokens with PostgREST wants.
    """
    if settings.jwt_secret:
        if len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"XPBASE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return settings.jwt_secret
    path: Path = settings.data_dir / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    log.warning("XPBASE_JWT_SECRET is not set: using the development secret in %s", path)
    return path.read_text().strip()


@dataclass(frozen=True)
class TokenKeys:
    """Everything needed to sign and verify access tokens and to derive refresh tokens.

    ``signing_key``/``verifying_key`` are the HS256 secret (str) or a
    cryptography private/public key; ``public_jwk`` is None for HS256.
    """

    algorithm: str
    signing_key: Any = field(repr=False)
    verifying_key: Any = field(repr=False)
    key_id: str | None
    issuer: str
    audience: str
    access_ttl_seconds: int
    chain_key: bytes = field(repr=False)
    public_jwk: dict[str, Any] | None = None

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set to publish: the public signing key, or no keys for HS256."""
        return {"keys": [self.public_jwk] if self.public_jwk else []}


def _read_private_key(value: str) -> bytes:
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    path = Path(text).expanduser()
    if not path.is_file():
        raise SettingsError("XPBASE_JWT_PRIVATE_KEY must be a PEM or the path of a PEM file")
    return path.read_bytes()


def _hkdf(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CHAIN_INFO).derive(material)


def load_token_keys(settings: Settings) -> TokenKeys:
    """The TokenKeys the settings describe.

    Raises SettingsError for a short HS256 secret, a missing or unreadable
    private key, an RSA key under 2048 bits, an EC key not on P-256, or a key
    that does not match ``XPBASE_JWT_ALGORITHM``.
    """
    ttl = min(settings.jwt_access_ttl_seconds, MAX_ACCESS_TTL_SECONDS)
    if settings.jwt_algorithm == "HS256":
        secret = resolve_jwt_secret(settings)
        return TokenKeys(
            algorithm="HS256",
            signing_key=secret,
            verifying_key=secret,
            key_id=settings.jwt_key_id or None,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl_seconds=ttl,
            chain_key=_hkdf(secret.encode()),
        )

    pem = settings.jwt_private_key.get_secret_value()
    if not pem:
        raise SettingsError(f"XPBASE_JWT_ALGORITHM={settings.jwt_algorithm} needs XPBASE_JWT_PRIVATE_KEY")
    try:
        private_key = serialization.load_pem_private_key(_read_private_key(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise SettingsError(
            f"XPBASE_JWT_PRIVATE_KEY is not a usable unencrypted PEM private key: {exc}"
        ) from exc
    kty: Literal["RSA", "EC"]
    if settings.jwt_algorithm == "RS256":
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise SettingsError("XPBASE_JWT_ALGORITHM=RS256 needs an RSA private key")
        if private_key.key_size < MIN_RSA_BITS:
            raise SettingsError(f"RS256 keys must have at least {MIN_RSA_BITS} bits")
        kty = "RSA"
    else:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise SettingsError("XPBASE_JWT_ALGORITHM=ES256 needs an EC private key on P-256")
        kty = "EC"
    public_key = private_key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_key = import_jwk(public_pem, kty)
    key_id = settings.jwt_key_id or jwk_key.thumbprint()
    public_jwk = {
        **jwk_key.as_dict(private=False),
        "kid": key_id,
        "use": "sig",
        "alg": settings.jwt_algorithm,
    }
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TokenKeys(
        algorithm=settings.jwt_algorithm,
        signing_key=private_key,
        verifying_key=public_key,
        key_id=key_id,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=ttl,
        chain_key=_hkdf(der),
        public_jwk=public_jwk,
    )


@dataclass(frozen=True)
class AccessToken:
    """A signed access token: the JWT, when it expires (Unix seconds, UTC) and its lifetime (seconds)."""

    token: str
    expires_at: int
    expires_in: int


def issue_access_token(
    keys: TokenKeys,
    *,
    profile_id: UUID | str,
    app_role: str,
    session_id: UUID | str,
    provider: str | None = None,
    now: int | None = None,
) -> AccessToken:
    """Sign an access token for a profile.

    ``app_role`` must come from ``profiles.role`` in the database; it lands in
    ``app_metadata.role``. The token lives ``keys.access_ttl_seconds`` (at
    most 3600 s).
    """
    issued_at = int(time.time()) if now is None else now
    expires_at = issued_at + keys.access_ttl_seconds
    claims: dict[str, Any] = {
        "iss": keys.issuer,
        "sub": str(profile_id),
        "aud": keys.audience,
        "role": "authenticated",
        "iat": issued_at,
        "exp": expires_at,
        "session_id": str(session_id),
        "app_metadata": {"role": app_role, "provider": provider},
        "user_metadata": {},
        "is_anonymous": False,
    }
    headers = {"kid": keys.key_id} if keys.key_id else None
    token = jwt.encode(claims, keys.signing_key, algorithm=keys.algorithm, headers=headers)
    return AccessToken(token=token, expires_at=expires_at, expires_in=keys.access_ttl_seconds)


def decode_access_token(token: str, keys: TokenKeys) -> dict[str, Any]:
    """The verified claims of an access token.

    Checks, in order: the header's ``alg`` is the configured algorithm and its
    ``kid`` the configured key id (absent when none is configured); the
    signature; ``exp`` and ``iat`` (required), ``nbf`` (when present), ``aud``,
    ``iss``; ``exp``, ``iat`` and ``nbf`` are JSON numbers (RFC 7519
    NumericDate, not strings or booleans); ``iat`` is not in the future and
    the lifetime ``exp - iat`` is at most what the service issues
    (``keys.access_ttl_seconds``) plus LIFETIME_LEEWAY_SECONDS; ``sub`` is a
    uuid; ``role`` is ``authenticated``. Raises InvalidAccessToken with a
    short reason otherwise.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidAccessToken("malformed token") from exc
    if header.get("alg") != keys.algorithm:
        raise InvalidAccessToken("algorithm not allowed")
    if header.get("kid") != keys.key_id:
        raise InvalidAccessToken("unknown key id")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            keys.verifying_key,
            algorithms=[keys.algorithm],
            audience=keys.audience,
            issuer=keys.issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "role"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidAccessToken("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidAccessToken("token not yet valid") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidAccessToken("wrong audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidAccessToken("wrong issuer") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidAccessToken(f"missing claim: {exc.claim}") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidAccessToken("bad signature") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidAccessToken("invalid token") from exc
    _check_dates(claims, keys)
    try:
        UUID(str(claims["sub"]))
    except ValueError as exc:
        raise InvalidAccessToken("sub must be a profile id") from exc
    if claims["role"] != "authenticated":
        raise InvalidAccessToken("role must be authenticated")
    return claims


def _is_numeric_date(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_dates(claims: dict[str, Any], keys: TokenKeys) -> None:
    """Refuse non-numeric dates, an issued-at in the future and lifetimes longer than the service issues.

    PyJWT converts ``"exp": "4102444800"`` with int() and accepts it; the
    service only ever signs numbers, and never longer than
    ``keys.access_ttl_seconds``, so anything else was not issued here.
    """
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_numeric_date(claims[name]):
            raise InvalidAccessToken(f"{name} must be a number")
    if claims["iat"] > time.time() + LIFETIME_LEEWAY_SECONDS:
        raise InvalidAccessToken("token issued in the future")
    if claims["exp"] - claims["iat"] > keys.access_ttl_seconds + LIFETIME_LEEWAY_SECONDS:
        raise InvalidAccessToken("token lifetime longer than the service issues")


def new_refresh_token() -> str:
    """A new random refresh token (43 URL-safe characters, 256 bits): the first of a session."""
    return secrets.token_urlsafe(32)


def next_refresh_token(keys: TokenKeys, parent: str) -> str:
    """The refresh token that replaces ``parent``: HMAC-SHA256 of it under the chain key.

    43 URL-safe characters.

    Deterministic, so a retry of ``parent`` inside the grace window yields the
    same live token; unpredictable without the server's key, so an old token
    cannot be walked forward.
    """
    digest = hmac.new(keys.chain_key, parent.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sha256(value: str) -> bytes:
    """SHA-256 of a token's UTF-8 bytes (32 bytes): how refresh tokens, states and browser nonces are kept."""
    return hashlib.sha256(value.encode()).digest()
