"""`gateway check-apps`' pure half: what a fetched document would make the gateway do."""

from __future__ import annotations

from gateway.check_apps import gateway_fetches, review, sample_params
from gateway.mappings import PlivoApp
from gateway.plivoxml import parse_document

APP = PlivoApp(name="support", account="MA00000000000000000001", numbers=("+14155550100",),
               answer_url="https://app.example.com/answer", auth_token_env="T",
               allowed_hosts=("app.example.com",))


def test_every_url_the_gateway_itself_would_request_is_listed_in_document_order():
    document = parse_document(
        '<Response><Conference waitSound="https://app.example.com/wait" enterSound="beep:1" '
        'callbackUrl="https://hooks.example.com/cb">r</Conference>'
        "<Play>https://cdn.example.com/a.mp3</Play>"
        "<Redirect>https://app.example.com/next</Redirect></Response>")
    assert [(f.element, f.attribute, f.url) for f in gateway_fetches(document.elements)] == [
        ("Conference", "waitSound", "https://app.example.com/wait"),
        ("Conference", "callbackUrl", "https://hooks.example.com/cb"),
        ("Redirect", "(its URL)", "https://app.example.com/next"),
    ]  # the Play is Twilio's to fetch; beep:1 is not a URL


def test_a_clean_document_has_no_problem_and_the_redirect_target_is_named():
    report = review(APP, parse_document(
        "<Response><Speak>Hi</Speak><Redirect>https://app.example.com/next</Redirect>"
        "</Response>"))
    assert report.problems == []
    assert any("not fetched by the dry run" in note.message for note in report.notes)


def test_every_element_it_cannot_run_is_a_problem_even_past_the_first():
    report = review(APP, parse_document(
        '<Response><Dial><User>sip:bob@pbx.elsewhere.example</User></Dial>\n'
        '<MultiPartyCall role="ai-agent">sales</MultiPartyCall>'
        "</Response>"))
    assert report.problems[0].startswith("line 1: <User> cannot run on the gateway: SIP host")
    assert report.problems[1].startswith("line 2: <MultiPartyCall> cannot run on the gateway")
    assert len(report.problems) == 2


def test_sample_parameters_say_they_are_a_dry_run():
    params = sample_params(APP)
    assert params["CallUUID"].startswith("check-apps-") and "dry run" in params["CallerName"]
    assert (params["To"], params["From"], params["Event"]) == ("14155550100", "12025550100",
                                                              "StartApp")
