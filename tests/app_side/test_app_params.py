"""Twilio's webhook parameters become the parameters a Plivo app expects."""

from __future__ import annotations

import uuid

import pytest

from gateway.app_side.params import (
    EVENT_HANGUP,
    EVENT_REDIRECT,
    EVENT_START_APP,
    call_params,
    call_uuid,
    conference_uuid,
    hangup_cause,
    hangup_params,
    plivo_number,
    uuid5_text,
)

VOICE_WEBHOOK = {
    "CallSid": "CA0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+14155550123",
    "To": "+14155550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
    "CallerName": "JOHN DOE",
}


def test_call_uuid_is_stable_for_a_call_sid():
    first = call_uuid("CA0123456789abcdef0123456789abcdef")
    assert first == call_uuid("CA0123456789abcdef0123456789abcdef")
    assert str(uuid.UUID(first)) == first


def test_call_uuid_differs_between_calls():
    assert call_uuid("CA1") != call_uuid("CA2")


def test_conference_uuid_is_stable_and_not_a_call_uuid():
    assert conference_uuid("CF1") == conference_uuid("CF1")
    assert conference_uuid("CF1") != call_uuid("CF1")


@pytest.mark.parametrize(("twilio", "plivo"), [
    ("+14155550100", "14155550100"),
    ("+442071838750", "442071838750"),
    ("14155550100", "14155550100"),
    ("sip:alice@example.com", "sip:alice@example.com"),
    ("client:alice", "client:alice"),
    ("anonymous", "anonymous"),
    ("+266696687", "266696687"),
    ("", ""),
])
def test_plivo_number(twilio, plivo):
    assert plivo_number(twilio) == plivo


def test_answer_request_params_are_plivos():
    params = call_params(VOICE_WEBHOOK, event=EVENT_START_APP)
    assert params == {
        "CallUUID": call_uuid(VOICE_WEBHOOK["CallSid"]),
        "From": "14155550123",
        "To": "14155550100",
        "Direction": "inbound",
        "CallStatus": "ringing",
        "CallerName": "JOHN DOE",
        "Event": "StartApp",
    }


def test_no_twilio_names_leak_through():
    params = call_params(VOICE_WEBHOOK)
    assert not {"CallSid", "AccountSid", "ApiVersion"} & set(params)
    assert "Event" not in params


def test_caller_name_is_empty_when_twilio_has_none():
    twilio = {k: v for k, v in VOICE_WEBHOOK.items() if k != "CallerName"}
    assert call_params(twilio)["CallerName"] == ""


@pytest.mark.parametrize(("twilio", "plivo"), [
    ("inbound", "inbound"), ("outbound-api", "outbound"), ("outbound-dial", "outbound")])
def test_direction(twilio, plivo):
    assert call_params({**VOICE_WEBHOOK, "Direction": twilio})["Direction"] == plivo


@pytest.mark.parametrize(("twilio", "plivo"), [
    ("queued", "ringing"), ("ringing", "ringing"), ("in-progress", "in-progress"),
    ("completed", "completed"), ("busy", "busy"), ("failed", "failed"),
    ("no-answer", "no-answer"), ("canceled", "cancel")])
def test_call_status(twilio, plivo):
    assert call_params({**VOICE_WEBHOOK, "CallStatus": twilio})["CallStatus"] == plivo


def test_call_status_override():
    assert call_params(VOICE_WEBHOOK, call_status="in-progress")["CallStatus"] == "in-progress"


def test_redirect_event():
    assert call_params(VOICE_WEBHOOK, event=EVENT_REDIRECT)["Event"] == "Redirect"


def test_forwarded_call_keeps_forwarded_from():
    params = call_params({**VOICE_WEBHOOK, "ForwardedFrom": "+14155550999"})
    assert params["ForwardedFrom"] == "14155550999"


def test_dialed_leg_names_its_a_leg():
    params = call_params({**VOICE_WEBHOOK, "Direction": "outbound-dial", "ParentCallSid": "CA9"})
    assert params["ALegUUID"] == call_uuid("CA9")


# --- hangup_url ----------------------------------------------------------------------------------

FINAL_STATUS = {
    **VOICE_WEBHOOK,
    "CallStatus": "completed",
    "CallDuration": "42",
    "Timestamp": "Thu, 01 Jun 2017 20:48:32 +0000",
}


def test_hangup_params_for_an_answered_call():
    params = hangup_params(FINAL_STATUS)
    assert params["CallUUID"] == call_uuid(VOICE_WEBHOOK["CallSid"])
    assert params["Event"] == EVENT_HANGUP
    assert params["CallStatus"] == "completed"
    assert params["HangupCause"] == "NORMAL_CLEARING"
    assert params["Duration"] == "42"
    assert params["BillDuration"] == "42"
    assert params["EndTime"] == "2017-06-01 20:48:32"
    assert params["AnswerTime"] == "2017-06-01 20:47:50"
    assert params["StartTime"] == "2017-06-01 20:47:50"
    assert (params["From"], params["To"], params["Direction"]) == (
        "14155550123", "14155550100", "inbound")


def test_hangup_times_from_what_the_gateway_saw():
    end = 1_496_350_112.0  # 2017-06-01 20:48:32 UTC
    params = hangup_params(FINAL_STATUS, started_at=end - 50, answered_at=end - 42)
    assert params["StartTime"] == "2017-06-01 20:47:42"
    assert params["AnswerTime"] == "2017-06-01 20:47:50"


@pytest.mark.parametrize(("status", "cause"), [
    ("completed", "NORMAL_CLEARING"), ("busy", "USER_BUSY"), ("no-answer", "NO_ANSWER"),
    ("canceled", "ORIGINATOR_CANCEL"), ("failed", "NORMAL_TEMPORARY_FAILURE")])
def test_hangup_cause_from_the_final_status(status, cause):
    assert hangup_cause({"CallStatus": status}) == cause


def test_failed_call_names_its_sip_cause():
    assert hangup_cause({"CallStatus": "failed", "SipResponseCode": "404"}) == "UNALLOCATED_NUMBER"


def test_unanswered_call_has_no_answer_time_and_no_duration():
    params = hangup_params({**FINAL_STATUS, "CallStatus": "no-answer", "CallDuration": "0"})
    assert params["AnswerTime"] == ""
    assert params["Duration"] == "0"
    assert params["BillDuration"] == "0"
    assert params["HangupCause"] == "NO_ANSWER"
    assert params["CallStatus"] == "completed"
    assert params["StartTime"] == params["EndTime"] == "2017-06-01 20:48:32"


def test_hangup_without_a_timestamp_uses_the_given_end():
    status = {k: v for k, v in FINAL_STATUS.items() if k != "Timestamp"}
    params = hangup_params(status, ended_at=1_496_350_112.0)
    assert params["EndTime"] == "2017-06-01 20:48:32"


def test_uuid5_text_is_the_standard_librarys_uuid5():
    namespace = uuid.UUID("5c0e8a52-6f3b-4d7e-9a41-3b8f2d1c7e60")
    for name in ["CA" + "0123456789abcdef" * 2, "", "CF1", "Zoë 日本", "x" * 500,
                 *(f"CA{n:032x}" for n in range(200))]:
        assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))
