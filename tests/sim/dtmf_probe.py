"""The keys a test hears in 20 ms µ-law frames: the gateway's own DTMF receiver, fed as a stream."""

from __future__ import annotations

from gateway.media.dtmf import DtmfReceiver


def keys_in(payloads: list[bytes]) -> str:
    """Keys heard in consecutive µ-law frames, in order, once per press."""
    receiver = DtmfReceiver()
    digits = [digit for payload in payloads for digit in receiver.feed(payload)]
    return "".join(digit.digit for digit in digits + receiver.flush())
