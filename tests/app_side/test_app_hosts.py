"""Only the hosts a mapping allows, and no private addresses it does not name."""

from __future__ import annotations

import pytest

from gateway.app_side.hosts import HostNotAllowed, HostUnresolvable, address_allowed, check_url


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise HostUnresolvable(host, "does not resolve")
        return table[host]
    return resolve


PUBLIC = resolver({"app.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})


def test_listed_public_host_passes():
    check_url("https://app.example.com/answer", ["app.example.com"], resolve=PUBLIC)


def test_host_names_compare_case_insensitively_and_ignore_a_trailing_dot():
    check_url("https://APP.Example.com./answer", ["app.example.COM"], resolve=PUBLIC)


def test_unlisted_host_is_refused_without_resolving():
    def must_not_resolve(host, port):
        raise AssertionError("resolved an unlisted host")
    with pytest.raises(HostNotAllowed, match="not in the mapping's allowed_hosts"):
        check_url("https://evil.example.net/x", ["app.example.com"], resolve=must_not_resolve)


def test_subdomain_is_not_the_listed_host():
    with pytest.raises(HostNotAllowed):
        check_url("https://api.app.example.com/x", ["app.example.com"], resolve=PUBLIC)


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "javascript", ""])
def test_only_http_and_https(scheme):
    with pytest.raises(HostNotAllowed, match="scheme"):
        check_url(f"{scheme}://app.example.com/x", ["app.example.com"], resolve=PUBLIC)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "::1", "fe80::1", "fc00::1", "ff02::1", "::",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_listed_name_resolving_to_a_private_address_is_refused(address):
    resolve = resolver({"app.example.com": ["93.184.216.34", address]})
    with pytest.raises(HostNotAllowed, match="not a public address"):
        check_url("https://app.example.com/x", ["app.example.com"], resolve=resolve)


def test_private_address_passes_when_its_network_is_listed():
    resolve = resolver({"app.internal": ["10.1.2.3"]})
    check_url("http://app.internal:8080/x", ["app.internal", "10.0.0.0/8"], resolve=resolve)


def test_ip_literal_must_be_listed():
    with pytest.raises(HostNotAllowed, match="not in the mapping's allowed_hosts"):
        check_url("http://93.184.216.34/x", ["app.example.com"], resolve=PUBLIC)


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:5000/answer", ["127.0.0.1"]),
    ("http://127.0.0.1:5000/answer", ["127.0.0.0/8"]),
    ("http://[::1]:5000/answer", ["::1"]),
    ("http://[::1]:5000/answer", ["[::1]"]),
    ("http://10.0.0.7/answer", ["10.0.0.0/24"]),
])
def test_ip_literal_covered_by_an_entry_passes_even_if_private(url, allowed):
    check_url(url, allowed, resolve=PUBLIC)


def test_loopback_name_needs_its_address_listed_too():
    resolve = resolver({"localhost": ["127.0.0.1"]})
    with pytest.raises(HostNotAllowed):
        check_url("http://localhost:5000/x", ["localhost"], resolve=resolve)
    check_url("http://localhost:5000/x", ["localhost", "127.0.0.1"], resolve=resolve)


def test_unresolvable_host_is_a_connection_problem_not_a_refusal():
    with pytest.raises(HostUnresolvable):
        check_url("https://app.example.com/x", ["app.example.com"], resolve=resolver({}))


def test_url_without_host_is_refused():
    with pytest.raises(HostNotAllowed, match="no host"):
        check_url("http:///answer", ["app.example.com"], resolve=PUBLIC)


def test_bad_port_is_refused():
    with pytest.raises(HostNotAllowed, match="port"):
        check_url("http://app.example.com:99999/x", ["app.example.com"], resolve=PUBLIC)


def test_address_rule():
    assert address_allowed("93.184.216.34", [])
    assert not address_allowed("127.0.0.1", [])
    assert address_allowed("127.0.0.1", ["127.0.0.1"])
    assert not address_allowed("not an address", ["0.0.0.0/0"])


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080\\@app.example.com/x",  # urlsplit: app.example.com; urllib3: 127.0.0.1
    "http://app.example.com\\.evil.example.net/x",
    "http://app.example.com\t/x",
    "http://app.example.com\r\n@evil.example.net/x",
])
def test_a_url_whose_host_parsers_disagree_on_is_refused_before_any_lookup(url):
    def must_not_resolve(host, port):
        raise AssertionError("resolved an ambiguous URL")
    with pytest.raises(HostNotAllowed, match=r"backslash|ambiguous"):
        check_url(url, ["app.example.com", "127.0.0.1"], resolve=must_not_resolve)


def test_credentials_in_a_url_do_not_hide_its_host():
    check_url("https://user:secret@app.example.com/x", ["app.example.com"], resolve=PUBLIC)
    with pytest.raises(HostNotAllowed):
        check_url("https://app.example.com@evil.example.net/x", ["app.example.com"],
                  resolve=PUBLIC)


def test_a_name_is_resolved_again_at_every_check_and_a_rebinding_is_refused():
    # The URL's verdict is remembered; the name's addresses are not: a name that now points
    # at a private address is refused the next time, however recently it passed.
    answers = [["93.184.216.34"], ["10.0.0.7"]]
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[len(asked) - 1]

    url = "https://rebind.example.com/answer"
    assert check_url(url, ["rebind.example.com"], resolve=rebinding) == ("93.184.216.34",)
    with pytest.raises(HostNotAllowed, match=r"10\.0\.0\.7"):
        check_url(url, ["rebind.example.com"], resolve=rebinding)
    assert asked == ["rebind.example.com", "rebind.example.com"]


def test_a_remembered_verdict_belongs_to_its_list():
    url = "http://127.0.0.1:5000/answer"
    assert check_url(url, ("127.0.0.1",), resolve=PUBLIC) == ()
    with pytest.raises(HostNotAllowed, match="not in the mapping's allowed_hosts"):
        check_url(url, ("app.example.com",), resolve=PUBLIC)
    assert check_url(url, ["127.0.0.0/8"], resolve=PUBLIC) == ()
