"""Server keys (app/keys.py): the first key signs, every key verifies, per purpose; the
signatures are itsdangerous' HMAC-SHA256 ones."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import BadSignature, Signer

from app.keys import ServerKeys

NEW = b"n" * 32
OLD = b"o" * 32


def test_the_first_key_signs_and_every_key_verifies():
    keys = ServerKeys([NEW, OLD])
    signed_with_old = ServerKeys([OLD]).signer("cursor").sign(b"value")

    signed = keys.signer("cursor").sign(b"value")

    assert keys.signer("cursor").unsign(signed_with_old) == b"value"
    assert ServerKeys([NEW]).signer("cursor").unsign(signed) == b"value"
    with pytest.raises(BadSignature):
        ServerKeys([OLD]).signer("cursor").unsign(signed)


def test_a_signature_for_one_purpose_is_refused_for_another():
    keys = ServerKeys([NEW])

    signed = keys.signer("cursor").sign(b"value")

    with pytest.raises(BadSignature):
        keys.signer("unsubscribe").unsign(signed)


def test_signatures_are_itsdangerous_hmac_sha256_ones():
    plain = Signer(
        [OLD, NEW], salt="cursor", digest_method=hashlib.sha256, key_derivation="hmac"
    )

    signed = ServerKeys([NEW, OLD]).signer("cursor").sign(b"value")

    assert signed == plain.sign(b"value")


def test_no_key_at_all_is_refused():
    with pytest.raises(ValueError, match="at least one key"):
        ServerKeys([])
