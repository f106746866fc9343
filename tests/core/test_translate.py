"""Translation to TwiML: golden documents for the seed's examples and each element's rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.examples import SEED_EXAMPLES
from gateway.plivoxml import Conference, Redirect, parse_document
from gateway.translate import ElementCannotRun, GatewayUrls, TranslationContext, translate
from gateway.translate.rooms import twilio_room_name
from gateway.translate.sounds import translate_sounds

GOLDEN = Path(__file__).parent / "golden"
ACCOUNT = "MA00000000000000000001"
CONTEXT = TranslationContext(account=ACCOUNT)


def twiml(xml: str, context: TranslationContext = CONTEXT, start: int = 0):
    result = translate(parse_document(xml), context, start)
    return etree.fromstring(result.twiml.encode()), result


def pretty(tree) -> str:
    return etree.tostring(tree, pretty_print=True).decode()


SEED_DOCUMENTS = [(ex.number, role, xml) for ex in SEED_EXAMPLES for role, xml in ex.documents]


@pytest.mark.parametrize(("number", "role", "xml"), SEED_DOCUMENTS,
                         ids=[f"example{n}-{r}" for n, r, _ in SEED_DOCUMENTS])
def test_seed_example_matches_golden_twiml(number, role, xml):
    tree, _ = twiml(xml)
    assert pretty(tree) == (GOLDEN / f"example{number}-{role}.xml").read_text()


def conference_of(tree):
    (dial,) = tree.findall("Dial")
    (conference,) = dial.findall("Conference")
    return dial, conference


def test_plivo_defaults_made_explicit_where_twilio_differs():
    dial, conf = conference_of(twiml("<Response><Conference>9876</Conference></Response>")[0])
    assert conf.get("beep") == "false"            # Twilio beeps by default, Plivo does not
    assert conf.get("waitUrl") == ""              # Twilio plays music by default, Plivo silence
    assert conf.get("maxParticipants") == "200"   # Plivo's default (Twilio's is 250)
    assert conf.get("startConferenceOnEnter") == "true"
    assert conf.get("endConferenceOnExit") == "false"
    assert conf.get("muted") == "false"
    assert conf.get("statusCallback") == "{gateway}/twilio/conference/events"
    assert conf.get("statusCallbackEvent").split() == [
        "start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"]
    assert conf.get("record") is None
    assert dial.get("action") == "{gateway}/twilio/conference/left?step=0"
    assert dial.get("method") == "POST"
    assert dial.get("hangupOnStar") is None
    assert conf.text == twilio_room_name(ACCOUNT, "9876")


def test_moderated_room_waits_with_translated_wait_sound():
    _, conf = conference_of(twiml('<Response><Conference startConferenceOnEnter="false" '
                                  'waitSound="http://www.foo.com/waitmusic/">9876</Conference>'
                                  "</Response>")[0])
    assert conf.get("startConferenceOnEnter") == "false"
    assert conf.get("waitUrl") == "{gateway}/twilio/conference/wait?step=0"
    assert conf.get("waitMethod") == "POST"


def test_moderator_ends_conference_on_exit():
    _, conf = conference_of(twiml('<Response><Conference startConferenceOnEnter="true" '
                                  'endConferenceOnExit="true">9876</Conference></Response>')[0])
    assert conf.get("endConferenceOnExit") == "true"


def test_muted_member():
    _, conf = conference_of(twiml('<Response><Conference muted="true">SimpleRoom</Conference>'
                                  "</Response>")[0])
    assert conf.get("muted") == "true"


@pytest.mark.parametrize(("enter", "exit_", "beep"), [
    ("", "", "false"), ("beep:1", "", "onEnter"), ("", "beep:2", "onExit"),
    ("beep:2", "beep:1", "true"), ("http://a.example/s", "", "false"),
])
def test_beep_follows_enter_and_exit_sounds(enter, exit_, beep):
    _, conf = conference_of(twiml(f'<Response><Conference enterSound="{enter}" '
                                  f'exitSound="{exit_}">r</Conference></Response>')[0])
    assert conf.get("beep") == beep


def test_hangup_on_star_goes_on_dial_and_document_resumes_after_conference():
    tree, result = twiml('<Response><Conference hangupOnStar="true" timeLimit="30">plivo'
                         "</Conference><Redirect>http://www.foo.com/nextstep/</Redirect>"
                         "</Response>")
    dial, _ = conference_of(tree)
    assert dial.get("hangupOnStar") == "true"
    # Plivo's timeLimit is the room's (a gateway timer); the Dial's is only the call's cap.
    assert dial.get("timeLimit") == "14400"
    assert isinstance(result.handback, Conference) and result.resume_at == 1
    assert any(n.attribute == "timeLimit" and n.status == "emulated" for n in result.notes)
    after, rest = twiml('<Response><Conference hangupOnStar="true">plivo</Conference>'
                        "<Redirect>http://www.foo.com/nextstep/</Redirect></Response>",
                        TranslationContext(account=ACCOUNT, step=1), start=1)
    assert after.find("Redirect").text == "{gateway}/twilio/continue?step=1"
    assert isinstance(rest.handback, Redirect) and rest.resume_at == 1


def test_recording_is_native_and_reported_to_the_gateway():
    _, conf = conference_of(twiml('<Response><Conference record="true" recordFileFormat="wav">'
                                  "r</Conference></Response>")[0])
    assert conf.get("record") == "record-from-start"
    assert conf.get("trim") == "do-not-trim"
    assert conf.get("recordingStatusCallback") == "{gateway}/twilio/conference/recording"
    assert conf.get("recordingStatusCallbackEvent") == "in-progress completed"


def test_max_members_above_twilio_limit_is_capped_and_reported():
    tree, result = twiml('<Response><Conference maxMembers="500">r</Conference></Response>')
    assert conference_of(tree)[1].get("maxParticipants") == "250"
    assert any(n.attribute == "maxMembers" for n in result.notes)


def test_send_digits_plays_dtmf_before_joining():
    tree, _ = twiml('<Response><Conference sendDigits="ww12">r</Conference></Response>')
    assert [c.tag for c in tree] == ["Play", "Dial"]
    assert tree[0].get("digits") == "ww12"


def test_features_not_yet_supported_are_reported():
    _, result = twiml('<Response><Conference digitsMatch="#0,99" transcriptionUrl='
                      '"http://a.example/t" recordWhenAlone="true" relayDTMF="false">r'
                      "</Conference></Response>")
    statuses = {n.attribute: n.status for n in result.notes}
    assert statuses["digitsMatch"] == "ignored"  # no callbackUrl to send them to
    assert statuses["transcriptionUrl"] == "ignored"  # record is false: nothing to transcribe
    assert statuses["recordWhenAlone"] == "unsupported"
    assert statuses["relayDTMF"] == "unsupported"


def test_rooms_are_scoped_by_account_and_survive_any_text():
    assert twilio_room_name("MA1", "9876") != twilio_room_name("MA2", "9876")
    assert twilio_room_name("MA1", "9876") == twilio_room_name("MA1", "9876")
    odd = 'a "quoted" room > with — ünïcødé ' + "x" * 300
    name = twilio_room_name(ACCOUNT, odd)
    assert name != twilio_room_name(ACCOUNT, odd[:-1])
    assert len(name) <= 128 and name.isascii() and '"' not in name and ">" not in name
    tree, _ = twiml(f"<Response><Conference>{odd.replace('>', '&gt;')}</Conference></Response>")
    assert conference_of(tree)[1].text == name


def test_gateway_urls_use_the_public_base():
    context = TranslationContext(account=ACCOUNT, urls=GatewayUrls("https://gw.example.com/"),
                                 step=4)
    dial, conf = conference_of(twiml('<Response><Conference waitSound="http://a.example/w">r'
                                     "</Conference></Response>", context)[0])
    assert dial.get("action") == "https://gw.example.com/twilio/conference/left?step=4"
    assert conf.get("waitUrl") == "https://gw.example.com/twilio/conference/wait?step=4"


SIDE_STREAM_CONTEXT = TranslationContext(
    account=ACCOUNT, urls=GatewayUrls("https://gw.example.com"), step=3, call_sid="CA" + "1" * 32,
    stream_token=lambda label: f"signed({label})")


def test_digits_match_forks_the_callers_audio_to_the_gateway_before_the_dial():
    tree, _ = twiml('<Response><Conference digitsMatch="#0, 99 ,000" callbackUrl='
                    '"http://a.example/cb">r</Conference></Response>', SIDE_STREAM_CONTEXT)
    start, _dial = tree
    (stream,) = start
    label = "member-3-CA" + "1" * 32
    assert (start.tag, stream.tag) == ("Start", "Stream")
    assert stream.attrib == {"name": label, "url": "wss://gw.example.com/twilio/media",
                             "track": "inbound_track"}
    assert {p.get("name"): p.get("value") for p in stream} == {
        "member": label, "token": f"signed({label})"}
    assert conference_of(tree)[1].get("participantLabel") == label


def test_digits_match_without_a_callback_url_opens_no_stream():
    tree, result = twiml('<Response><Conference digitsMatch="99">r</Conference><Speak>Bye'
                         "</Speak></Response>", SIDE_STREAM_CONTEXT)
    assert [c.tag for c in tree] == ["Dial"]  # streams are billed: none for nothing to report
    assert {n.attribute: n.status for n in result.notes}["digitsMatch"] == "ignored"


def test_a_member_without_digits_match_opens_no_stream():
    tree, _ = twiml('<Response><Conference callbackUrl="http://a.example/cb">r</Conference>'
                    "</Response>", SIDE_STREAM_CONTEXT)
    assert [c.tag for c in tree] == ["Dial"]


def test_media_url_setting_wins_and_http_bases_give_ws():
    assert GatewayUrls("http://127.0.0.1:8000").media_stream == "ws://127.0.0.1:8000/twilio/media"
    assert GatewayUrls("https://gw.example.com", media="wss://m.example.com/s").media_stream == (
        "wss://m.example.com/s")


def test_the_twiml_after_the_room_stops_the_members_stream_first():
    context = TranslationContext(account=ACCOUNT, step=4, stop_streams=("member-3-CA1",))
    tree, _ = twiml("<Response><Speak>Bye</Speak></Response>", context)
    stop, say = tree
    assert (stop.tag, stop[0].tag, stop[0].get("name"), say.tag) == (
        "Stop", "Stream", "member-3-CA1", "Say")


@pytest.mark.parametrize(("voice", "language", "expected"), [
    ("WOMAN", "en-US", "Polly.Joanna"), ("MAN", "en-US", "Polly.Matthew"),
    ("WOMAN", "fr-FR", "Polly.Celine"), ("MAN", "de-DE", "Polly.Hans"),
    ("Polly.Joey", "en-US", "Polly.Joey"), ("WOMAN", "xx-YY", "woman"),
])
def test_speak_voices_map_to_twilio_voices(voice, language, expected):
    tree, _ = twiml(f'<Response><Speak voice="{voice}" language="{language}" loop="3">Hi'
                    "</Speak></Response>")
    say = tree.find("Say")
    assert (say.get("voice"), say.get("language"), say.get("loop"), say.text) == (
        expected, language, "3", "Hi")


def test_speak_ssml_becomes_twilio_ssml():
    tree, result = twiml('<Response><Speak>Break of<break strength="x-strong" time="1000ms"/>'
                         ' one <say-as interpret-as="spell-out">W3C</say-as><cont>kept</cont>'
                         '<lang xml:lang="it">ciao</lang></Speak></Response>')
    say = tree.find("Say")
    assert say.text == "Break of"
    assert [c.tag for c in say] == ["break", "say-as", "lang"]
    assert say[0].get("strength") == "x-strong" and say[0].tail == " one "
    assert say[1].get("interpret-as") == "spell-out" and say[1].tail == "kept"
    assert say[2].get("{http://www.w3.org/XML/1998/namespace}lang") == "it"
    assert any("cont" in n.message for n in result.notes)


def test_play_wait_and_loops():
    tree, result = twiml('<Response><Play loop="0">https://a.example/m.mp3</Play>'
                         '<Wait length="5" silence="true" minSilence="500"/></Response>')
    play, pause = tree
    assert (play.tag, play.text, play.get("loop")) == ("Play", "https://a.example/m.mp3", "0")
    assert (pause.tag, pause.get("length")) == ("Pause", "5")
    assert any(n.attribute == "silence" for n in result.notes)


@pytest.mark.parametrize(("xml", "verbs"), [
    ('<Hangup reason="rejected"/>', [("Reject", "rejected")]),
    ('<Hangup reason="busy"/>', [("Reject", "busy")]),
    ("<Hangup/>", [("Hangup", None)]),
    ('<Hangup reason="dummy"/>', [("Hangup", None)]),
    ('<Speak>Bye</Speak><Hangup reason="busy"/>', [("Say", None), ("Hangup", None)]),
])
def test_hangup_rejects_only_before_anything_played(xml, verbs):
    tree, result = twiml(f"<Response>{xml}</Response>")
    assert [(v.tag, v.get("reason")) for v in tree] == verbs
    assert result.resume_at is None and result.handback is None


def test_hangup_schedule_is_a_timer_and_the_document_goes_on():
    tree, result = twiml('<Response><Hangup schedule="60" reason="busy"/><Speak>Still here'
                         "</Speak></Response>")
    assert [v.tag for v in tree] == ["Say"]
    assert [(e.seconds, e.reason) for e in result.effects] == [(60, "busy")]


def test_elements_after_hangup_are_unreachable_and_reported():
    tree, result = twiml("<Response><Hangup/><Speak>never</Speak></Response>")
    assert [v.tag for v in tree] == ["Hangup"]
    assert any("unreachable" in n.message for n in result.notes)


def test_an_element_the_gateway_cannot_run_stops_the_stretch_never_skipped():
    with pytest.raises(ElementCannotRun) as refused:
        twiml('<Response><Speak>Press nothing</Speak>\n'
              '<MultiPartyCall role="ai-agent">m</MultiPartyCall><Speak>Hi</Speak></Response>')
    assert (refused.value.element, refused.value.line) == ("MultiPartyCall", 2)
    assert "line 2: <MultiPartyCall> cannot run on the gateway" in str(refused.value)


def test_only_the_stretch_that_reaches_it_fails():
    xml = ('<Response><Conference>r</Conference><MultiPartyCall role="ai-agent">m</MultiPartyCall>'
           "</Response>")
    tree, result = twiml(xml)
    assert [v.tag for v in tree] == ["Dial"] and result.resume_at == 1
    with pytest.raises(ElementCannotRun, match="<MultiPartyCall>"):
        twiml(xml, start=result.resume_at)


def test_unreachable_elements_after_hangup_are_reported_not_refused():
    tree, result = twiml('<Response><Hangup/><MultiPartyCall role="ai-agent">m</MultiPartyCall>'
                         "</Response>")
    assert [v.tag for v in tree] == ["Hangup"]
    assert ("MultiPartyCall", "ignored") in [(n.element, n.status) for n in result.notes]


def test_reject_is_remembered_for_plivos_hangup_cause():
    _, rejected = twiml('<Response><Hangup reason="rejected"/></Response>')
    _, plain = twiml('<Response><Speak>Hi</Speak><Hangup reason="busy"/></Response>')
    assert rejected.rejected == "rejected" and plain.rejected is None


def test_every_dial_carries_the_call_length_cap():
    dial, _ = conference_of(twiml("<Response><Conference>r</Conference></Response>")[0])
    assert dial.get("timeLimit") == "14400"  # Twilio's own maximum, written out
    shorter = TranslationContext(account=ACCOUNT, max_call_seconds=600)
    dial, _ = conference_of(twiml("<Response><Conference>r</Conference></Response>", shorter)[0])
    assert dial.get("timeLimit") == "600"


def test_redirect_hands_back_to_the_gateway():
    tree, result = twiml("<Response><Speak>One</Speak><Redirect method=\"GET\">"
                         "http://a.example/next</Redirect><Speak>never here</Speak></Response>")
    assert [v.tag for v in tree] == ["Say", "Redirect"]
    assert tree[1].get("method") == "POST"
    assert result.resume_at == 1 and isinstance(result.handback, Redirect)


def test_sound_documents_keep_only_play_speak_wait_and_loop():
    document = parse_document('<Response><Play>http://a.example/m.mp3</Play><Speak>Hold on'
                              '</Speak><Wait length="2"/><Hangup/></Response>')
    result = translate_sounds(document, CONTEXT, loop_url="{gateway}/twilio/conference/wait")
    tree = etree.fromstring(result.twiml.encode())
    assert [v.tag for v in tree] == ["Play", "Say", "Pause", "Redirect"]
    assert tree[3].text == "{gateway}/twilio/conference/wait"
    assert [(n.element, n.status) for n in result.notes] == [("Hangup", "ignored")]
