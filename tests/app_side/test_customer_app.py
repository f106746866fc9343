"""The customer-app stand-in itself: the end-to-end tests rely on what it records and verifies."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from gateway.app_side.signing import signature_headers
from tests.support.customer_app import CustomerApp


def test_unrouted_path_answers_404_and_is_recorded(customer_app):
    response = requests.get(customer_app.url("/nowhere?x=1"), timeout=5)
    assert response.status_code == 404
    received = customer_app.wait_for_request("/nowhere")
    assert received.query == {"x": ["1"]}


def test_unsigned_request_has_no_verdict(customer_app):
    customer_app.route("/answer", "<Response/>")
    requests.post(customer_app.url("/answer"), data={"a": "1"}, timeout=5)
    received = customer_app.wait_for_request("/answer")
    assert (received.signature_v2_valid, received.signature_v3_valid) == (None, None)
    assert not received.signatures_valid


def test_request_signed_with_another_token_is_marked_invalid(customer_app):
    customer_app.route("/answer", "<Response/>")
    url = customer_app.url("/answer")
    headers = signature_headers("POST", url, {"a": "1"}, "not-the-apps-token")
    requests.post(url, data={"a": "1"}, headers=headers, timeout=5)
    received = customer_app.wait_for_request("/answer")
    assert received.signature_v2_valid is False
    assert received.signature_v3_valid is False


def test_route_with_delay_answers_late(customer_app):
    customer_app.route("/slow", "<Response/>", delay=0.3)
    began = time.monotonic()
    assert requests.get(customer_app.url("/slow"), timeout=5).status_code == 200
    assert time.monotonic() - began >= 0.3


def test_wait_for_gives_up_after_its_timeout(customer_app):
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="received"):
        customer_app.wait_for(lambda reqs: len(reqs) > 0, timeout=0.2)
    assert time.monotonic() - began < 2.0


def test_refused_url_refuses():
    port = int(CustomerApp.refused_url("/x").rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_release_frees_hanging_requests_and_later_ones_hang_again(customer_app):
    customer_app.hang("/hang")
    with pytest.raises(requests.ReadTimeout):
        requests.get(customer_app.url("/hang"), timeout=(2, 0.3))
    customer_app.release()
    with pytest.raises(requests.ReadTimeout):
        requests.get(customer_app.url("/hang"), timeout=(2, 0.3))
    assert customer_app.count("/hang") == 2
