"""Access tokens: claims, HS256/RS256/ES256 signing, the JWKS, and a corpus of tokens that must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from service.lib.auth_sessions import start_session
from service.lib.tokens import SettingsError, TokenKeys, issue_access_token, load_token_keys
from tests.helpers import acting_as, new_profile
from tests.service.conftest import JWT_SECRET, make_token
from xpbase.db import Database
from xpbase.rpc import PostgresRPC
from xpbase.settings import Settings


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@asynccontextmanager
async def serving(db: Database, tmp_path: Path, **settings: Any) -> AsyncIterator[Quart]:
    """An app with these settings on the per-test database."""
    application = create_app(
        Settings(**{"jwt_secret": JWT_SECRET, "data_dir": tmp_path, **settings}), database=db
    )
    async with application.test_app():
        yield application


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_token(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None) -> str:
    """A JWT assembled by hand (for what PyJWT refuses to make: alg none, HMAC keyed with a public key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = _b64(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def _claims(sub: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {
        "iss": "xpbase",
        "sub": sub,
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        "app_metadata": {"role": "member"},
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def _tamper(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


async def _me(client: Client, token: str) -> tuple[int, dict[str, Any]]:
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, await response.get_json()


# HS256 (the default) --------------------------------------------------------------

HS_CORPUS: dict[str, Callable[[str], str]] = {
    "alg_none": lambda sub: _raw_token({"alg": "none", "typ": "JWT"}, _claims(sub), None),
    "alg_none_with_signature": lambda sub: _raw_token(
        {"alg": "none"}, _claims(sub), lambda m: hmac.new(JWT_SECRET.encode(), m, hashlib.sha256).digest()
    ),
    "hs512_with_the_right_secret": lambda sub: make_token(sub=sub, algorithm="HS512"),
    "wrong_key": lambda sub: make_token(secret="another-secret-that-is-also-long-enough-0000", sub=sub),
    "expired": lambda sub: make_token(sub=sub, iat=int(time.time()) - 4000, exp=int(time.time()) - 10),
    "nbf_in_the_future": lambda sub: make_token(sub=sub, nbf=int(time.time()) + 300),
    "wrong_audience": lambda sub: make_token(sub=sub, aud="anon"),
    "wrong_issuer": lambda sub: make_token(sub=sub, iss="https://evil.test/auth/v1"),
    "missing_issuer": lambda sub: make_token(sub=sub, iss=None),
    "missing_sub": lambda sub: make_token(sub=None),
    "missing_exp": lambda sub: make_token(sub=sub, exp=None),
    "missing_role": lambda sub: make_token(sub=sub, role=None),
    "sub_not_a_uuid": lambda sub: make_token(sub="admin"),
    "unknown_kid": lambda sub: jwt.encode(_claims(sub), JWT_SECRET, algorithm="HS256", headers={"kid": "k2"}),
    "role_service_role": lambda sub: make_token(sub=sub, role="service_role"),
    "role_forged_into_payload": lambda sub: _tamper(make_token(sub=sub), role="service_role"),
    "app_role_forged_into_payload": lambda sub: _tamper(make_token(sub=sub), app_metadata={"role": "admin"}),
    "sub_swapped": lambda sub: _tamper(make_token(sub=sub), sub=str(uuid.uuid4())),
    "truncated": lambda sub: make_token(sub=sub).rsplit(".", 1)[0],
    "garbage": lambda sub: "not-a-jwt",
}


@pytest.mark.parametrize("kind", sorted(HS_CORPUS))
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_hs256_rejection_corpus(kind: str, client: Client, db: Database) -> None:
    """Each malformed, forged, expired or misaddressed token is 401 invalid_token with WWW-Authenticate."""
    pid = await new_profile(db, "Eve")
    assert (await _me(client, make_token(sub=str(pid))))[0] == 200
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {HS_CORPUS[kind](str(pid))}"})
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_authorization_header_must_be_bearer(client: Client, db: Database) -> None:
    """Basic, empty and scheme-less Authorization headers are 401."""
    pid = await new_profile(db, "Eve")
    for header in ("Basic dXNlcjpwYXNz", "Bearer ", make_token(sub=str(pid))):
        assert (await client.get("/v1/me", headers={"Authorization": header})).status_code == 401


async def test_hs256_jwks_is_empty(client: Client) -> None:
    """With HS256 there is no public key to publish."""
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert await response.get_json() == {"keys": []}
    assert "max-age" in response.headers["Cache-Control"]


async def test_issued_token_carries_the_contract_claims(app: Quart, db: Database) -> None:
    """sub = profile id, role and aud authenticated, iss, exp - iat = 3600, session_id, app_metadata.role."""
    pid = await new_profile(db, "Ada")
    keys: TokenKeys = app.config["XPBASE_TOKEN_KEYS"]
    session = await start_session(PostgresRPC(db), keys, app.config["XPBASE_SETTINGS"], pid, "discord")
    claims = jwt.decode(session.access.token, JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == str(pid)
    assert (claims["role"], claims["aud"], claims["iss"]) == ("authenticated", "authenticated", "xpbase")
    assert claims["exp"] - claims["iat"] == 3600 == session.access.expires_in
    assert claims["session_id"] == str(session.session_id)
    assert claims["app_metadata"] == {"role": "member", "provider": "discord"}
    assert jwt.get_unverified_header(session.access.token) == {"alg": "HS256", "typ": "JWT"}


async def test_app_role_comes_from_the_database(app: Quart, db: Database) -> None:
    """app_metadata.role is profiles.role at issue time; a member cannot change their own role."""
    pid = await new_profile(db, "Ada")
    async with acting_as(db, "authenticated", pid) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update public.profiles set role = 'admin' where id = $1", pid)
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", pid)
    session = await start_session(
        PostgresRPC(db), app.config["XPBASE_TOKEN_KEYS"], app.config["XPBASE_SETTINGS"], pid
    )
    assert (
        jwt.decode(session.access.token, options={"verify_signature": False})["app_metadata"]["role"]
        == "admin"
    )


async def test_access_ttl_is_capped_at_an_hour(tmp_path: Path) -> None:
    """XPBASE_JWT_ACCESS_TTL_SECONDS above 3600 is refused; shorter lifetimes are honoured."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(jwt_access_ttl_seconds=7200)
    keys = load_token_keys(Settings(jwt_secret=JWT_SECRET, data_dir=tmp_path, jwt_access_ttl_seconds=900))
    token = issue_access_token(keys, profile_id=uuid.uuid4(), app_role="member", session_id=uuid.uuid4())
    assert token.expires_in == 900


# RS256 and ES256 ------------------------------------------------------------------------


async def test_rs256_tokens_verify_with_the_published_jwks(
    db: Database, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    """RS256: the JWKS holds the public key, kid = its RFC 7638 thumbprint; issued tokens verify with it."""
    pid = await new_profile(db, "Ada")
    async with serving(db, tmp_path, jwt_algorithm="RS256", jwt_private_key=_pem(rsa_key)) as application:
        client = application.test_client()
        jwks = await (await client.get("/.well-known/jwks.json")).get_json()
        session = await start_session(
            PostgresRPC(db),
            application.config["XPBASE_TOKEN_KEYS"],
            application.config["XPBASE_SETTINGS"],
            pid,
        )
        assert (await _me(client, session.access.token))[0] == 200
    (published,) = jwks["keys"]
    assert published["kty"] == "RSA" and published["alg"] == "RS256" and published["use"] == "sig"
    assert "d" not in published and "p" not in published
    header = jwt.get_unverified_header(session.access.token)
    assert header["kid"] == published["kid"] and header["alg"] == "RS256"
    claims = jwt.decode(
        session.access.token,
        jwt.PyJWK(published).key,
        algorithms=["RS256"],
        audience="authenticated",
        issuer="xpbase",
    )
    assert claims["sub"] == str(pid)


async def test_es256_tokens_verify_with_the_published_jwks(
    db: Database, tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """ES256 (P-256) works the same way, with a key id set in the settings."""
    pid = await new_profile(db, "Ada")
    key_file = tmp_path / "es256.pem"
    key_file.write_text(_pem(ec_key))
    async with serving(
        db, tmp_path, jwt_algorithm="ES256", jwt_private_key=str(key_file), jwt_key_id="xpbase-2026-11"
    ) as application:
        client = application.test_client()
        jwks = await (await client.get("/.well-known/jwks.json")).get_json()
        session = await start_session(
            PostgresRPC(db),
            application.config["XPBASE_TOKEN_KEYS"],
            application.config["XPBASE_SETTINGS"],
            pid,
        )
        assert (await _me(client, session.access.token))[0] == 200
    (published,) = jwks["keys"]
    assert (published["kty"], published["crv"], published["kid"]) == ("EC", "P-256", "xpbase-2026-11")
    jwt.decode(session.access.token, jwt.PyJWK(published).key, algorithms=["ES256"], audience="authenticated")


def _rs_corpus(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, kid: str, sub: str
) -> dict[str, str]:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other = rsa.generate_private_key(65537, 2048)
    return {
        # The classic confusion: HS256 keyed with the RSA public key, which anyone can fetch.
        "hs256_keyed_with_the_public_key": _raw_token(
            {"alg": "HS256", "typ": "JWT", "kid": kid},
            _claims(sub),
            lambda m: hmac.new(public_pem, m, hashlib.sha256).digest(),
        ),
        "hs256_with_the_old_secret": jwt.encode(
            _claims(sub), JWT_SECRET, algorithm="HS256", headers={"kid": kid}
        ),
        "alg_none": _raw_token({"alg": "none", "kid": kid}, _claims(sub), None),
        "another_rsa_key_same_kid": jwt.encode(_claims(sub), other, algorithm="RS256", headers={"kid": kid}),
        "es256_token": jwt.encode(_claims(sub), ec_key, algorithm="ES256", headers={"kid": kid}),
        "ps256_same_key": jwt.encode(_claims(sub), rsa_key, algorithm="PS256", headers={"kid": kid}),
        "unknown_kid": jwt.encode(_claims(sub), rsa_key, algorithm="RS256", headers={"kid": "rotated-away"}),
        "no_kid": jwt.encode(_claims(sub), rsa_key, algorithm="RS256"),
        "expired": jwt.encode(
            _claims(sub, exp=int(time.time()) - 5), rsa_key, algorithm="RS256", headers={"kid": kid}
        ),
        "wrong_issuer": jwt.encode(
            _claims(sub, iss="someone-else"), rsa_key, algorithm="RS256", headers={"kid": kid}
        ),
        "role_service_role": jwt.encode(
            _claims(sub, role="service_role"), rsa_key, algorithm="RS256", headers={"kid": kid}
        ),
    }


async def test_rs256_rejection_corpus(
    db: Database, tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """HS/RS confusion, alg none, other keys and algorithms, unknown or missing kid: all 401 under RS256."""
    pid = str(await new_profile(db, "Eve"))
    async with serving(db, tmp_path, jwt_algorithm="RS256", jwt_private_key=_pem(rsa_key)) as application:
        client = application.test_client()
        kid = application.config["XPBASE_TOKEN_KEYS"].key_id
        good = jwt.encode(_claims(pid), rsa_key, algorithm="RS256", headers={"kid": kid})
        assert (await _me(client, good))[0] == 200
        results = {
            kind: await _me(client, token) for kind, token in _rs_corpus(rsa_key, ec_key, kid, pid).items()
        }
    refused = {
        kind: status
        for kind, (status, body) in results.items()
        if status == 401 and body["error"]["code"] == "invalid_token"
    }
    assert refused.keys() == results.keys(), results


def test_short_hs256_secret_is_refused(tmp_path: Path) -> None:
    """A configured HS256 secret under 32 bytes stops the app from starting."""
    with pytest.raises(SettingsError):
        create_app(Settings(jwt_secret="x" * 31, data_dir=tmp_path))


@pytest.mark.parametrize(
    "case", ["no_key", "not_pem", "rsa_for_es256", "ec_for_rs256", "rsa_1024", "ec_p384", "missing_file"]
)
def test_unusable_signing_keys_are_refused(
    case: str, tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """A missing, unreadable, weak or mismatched private key stops the app from starting."""
    settings = {
        "no_key": {"jwt_algorithm": "RS256"},
        "not_pem": {"jwt_algorithm": "RS256", "jwt_private_key": "-----BEGIN PRIVATE KEY-----\nnope\n"},
        "rsa_for_es256": {"jwt_algorithm": "ES256", "jwt_private_key": _pem(rsa_key)},
        "ec_for_rs256": {"jwt_algorithm": "RS256", "jwt_private_key": _pem(ec_key)},
        "rsa_1024": {
            "jwt_algorithm": "RS256",
            "jwt_private_key": _pem(rsa.generate_private_key(65537, 1024)),
        },
        "ec_p384": {
            "jwt_algorithm": "ES256",
            "jwt_private_key": _pem(ec.generate_private_key(ec.SECP384R1())),
        },
        "missing_file": {"jwt_algorithm": "RS256", "jwt_private_key": str(tmp_path / "nope.pem")},
    }[case]
    with pytest.raises(SettingsError):
        load_token_keys(Settings(jwt_secret=JWT_SECRET, data_dir=tmp_path, **settings))
