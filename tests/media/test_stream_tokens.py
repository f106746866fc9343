"""The member token a side stream carries: any gateway process checks it, with no store."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from gateway.media.tokens import stream_token, token_key, token_valid

KEY = token_key("twilio-auth-token")
LABEL = "member-3-CA" + "1" * 32


def test_a_token_is_valid_for_its_member_only():
    token = stream_token(KEY, LABEL)
    assert token_valid(KEY, LABEL, token)
    assert not token_valid(KEY, "member-4-CA" + "1" * 32, token)   # another stay in a room
    assert not token_valid(token_key("another-token"), LABEL, token)  # another account
    assert not token_valid(KEY, LABEL, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not token_valid(KEY, LABEL, "")


def test_a_token_is_url_safe_and_never_a_twilio_signature():
    token = stream_token(KEY, LABEL)
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token
    signature = RequestValidator("twilio-auth-token").compute_signature(LABEL, {})
    assert token != signature


def test_odd_input_is_refused_not_raised():
    assert not token_valid(KEY, LABEL, "ü" * 43)
    assert not token_valid(KEY, "", stream_token(KEY, LABEL))
