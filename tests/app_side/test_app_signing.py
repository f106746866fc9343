"""Plivo's V2 and V3 signatures: the SDK's published vectors, and the SDK's own validators
accepting what `signature_headers` produces for many shapes of request."""

from __future__ import annotations

import random

import pytest
import requests
from plivo.utils import validate_signature
from plivo.utils.signature_v3 import validate_v3_signature

from gateway.app_side.signing import (
    HEADER_MA_V3,
    HEADER_V2,
    HEADER_V2_NONCE,
    HEADER_V3,
    HEADER_V3_NONCE,
    new_nonce,
    plivo_signature_v2,
    plivo_signature_v3,
    signature_headers,
)

# Vectors from plivo-go utils_test.go (reference/plivo.md §3.4).
GO_TOKEN = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
GO_NONCE = "31627761595286130198"
GO_URL = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml"
GO_PARAMS = {
    "Direction": "outbound",
    "From": "19792014278",
    "ALegUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallStatus": "in-progress",
    "BillRate": "0.002",
    "ParentAuthID": "MANWVLYTK4ZWU1YTY4QA",
    "To": "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
    "ALegRequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "RequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "SIP-H-To": "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
    "SessionStart": "2020-04-08 11:34:33.238707",
    "Event": "StartApp",
}


def test_v2_vector_without_port():
    assert plivo_signature_v2("https://answer.url", "12345", "my_auth_token") == (
        "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=")


def test_v2_vector_with_port():
    assert plivo_signature_v2("https://answer.url:8000", "24725744043720739450",
                              "my_auth_token") == "LDphWoWimP4QM5AoWI1uwP6WmlWtt5ITPZjXIWYvCNU="


@pytest.mark.parametrize(("method", "url", "expected"), [
    ("POST", GO_URL + "/?a=b&c=d", "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="),
    ("GET", GO_URL + "/?a=b&c=d", "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ="),
    ("POST", GO_URL, "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="),
    ("GET", GO_URL, "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="),
], ids=["post-with-query", "get-with-query", "post-no-query", "get-no-query"])
def test_v3_go_vectors(method, url, expected):
    assert plivo_signature_v3(method, url, GO_PARAMS, GO_NONCE, GO_TOKEN) == expected


def test_headers_carry_both_signatures_with_one_numeric_nonce():
    headers = signature_headers("POST", "https://app.example.com/answer", {"a": "1"}, "tok")
    assert set(headers) == {HEADER_V2, HEADER_V2_NONCE, HEADER_V3, HEADER_V3_NONCE, HEADER_MA_V3}
    assert headers[HEADER_V2_NONCE] == headers[HEADER_V3_NONCE]
    assert headers[HEADER_V2_NONCE].isdigit() and len(headers[HEADER_V2_NONCE]) == 20
    assert headers[HEADER_MA_V3] == headers[HEADER_V3]


def test_fresh_nonce_each_time():
    assert len({new_nonce() for _ in range(50)}) == 50


def test_given_nonce_makes_headers_reproducible():
    one = signature_headers("GET", "https://a.example/x?b=1", {}, "tok", nonce="42")
    two = signature_headers("GET", "https://a.example/x?b=1", {}, "tok", nonce="42")
    assert one == two


def test_sdk_rejects_a_signature_made_with_another_token():
    url = "https://app.example.com/answer"
    headers = signature_headers("POST", url, {"CallUUID": "u"}, "right-token")
    assert not validate_signature(url, headers[HEADER_V2_NONCE], headers[HEADER_V2], "wrong")
    assert not validate_v3_signature("POST", url, headers[HEADER_V3_NONCE], "wrong",
                                     headers[HEADER_V3], {"CallUUID": "u"})


def test_v3_covers_the_post_params():
    url = "https://app.example.com/answer"
    headers = signature_headers("POST", url, {"CallUUID": "u", "From": "1"}, "tok")
    assert not validate_v3_signature("POST", url, headers[HEADER_V3_NONCE], "tok",
                                     headers[HEADER_V3], {"CallUUID": "u", "From": "2"})


# --- many shapes of request, checked by the SDK's validators -----------------------------------

ASCII_VALUES = ["", " ", "a b", "1+2", "x&y=z", "%41", "100%", "sip:bob@example.com;tag=1",
                "<Response/>", "a,b", "~!*'()", "CA" + "0" * 32]
UNICODE_VALUES = ["José", "Zoë Ørsted", "北京", "emoji 🎉", "тест", "ümlaut\u00a0nbsp",
                  "مرحبا", "a\tb", "line\nbreak"]
KEYS = ["CallUUID", "From", "To", "CallerName", "Event", "Digits", "a", "B", "ConferenceName",
        "x-y", "with space", "ñame", "数字"]
PATHS = ["/answer", "/", "/a/b/c.xml", "/with space/x", "/ünicode/pfad", "/trailing/",
         "/semi;colon"]
HOSTS = ["app.example.com", "app.example.com:8443", "127.0.0.1:5000", "[::1]:8080"]


def _random_request(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    method = rng.choice(["GET", "POST"])
    scheme = rng.choice(["http", "https"])
    query: list[tuple[str, str]] = []
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(["q", "a", "x", "token"])  # repeated keys on purpose
        query.append((key, rng.choice(ASCII_VALUES)))
    # The SDK's V3 validator raises on non-ASCII query text, so GET params stay ASCII.
    value_pool = ASCII_VALUES if method == "GET" else ASCII_VALUES + UNICODE_VALUES
    key_pool = [k for k in KEYS if k.isascii()] if method == "GET" else KEYS
    params = {rng.choice(key_pool): rng.choice(value_pool) for _ in range(rng.randint(0, 6))}
    base = f"{scheme}://{rng.choice(HOSTS)}{rng.choice(PATHS)}"
    # The URL as it goes on the wire: what requests makes of it (GET: params in the query).
    prepared = requests.PreparedRequest()
    prepared.prepare_url(base, query + (list(params.items()) if method == "GET" else []))
    assert prepared.url is not None
    return method, prepared.url, params


@pytest.mark.parametrize("seed", range(300))
def test_sdk_validators_accept_what_we_sign(seed):
    method, url, params = _random_request(random.Random(seed))
    headers = signature_headers(method, url, params if method == "POST" else {}, "s3cr3t-token")

    assert validate_signature(url, headers[HEADER_V2_NONCE], headers[HEADER_V2], "s3cr3t-token")
    # What the app hands the validator: GET -> nothing (the SDK reads the query itself),
    # POST -> the form it received.
    app_params = {} if method == "GET" else dict(params)
    assert validate_v3_signature(method, url, headers[HEADER_V3_NONCE], "s3cr3t-token",
                                 headers[HEADER_V3], app_params), (method, url, params)


def test_get_signature_covers_params_given_apart_from_the_url():
    # The SDK merges params the app passes with the URL's query; so do we.
    url = "https://app.example.com/answer?a=b"
    params = {"CallUUID": "u", "From": "14155550100"}
    headers = signature_headers("GET", url, params, "tok")
    assert validate_v3_signature("GET", url, headers[HEADER_V3_NONCE], "tok",
                                 headers[HEADER_V3], dict(params))
