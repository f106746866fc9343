"""The streaming DTMF receiver: 8 kHz G.711 µ-law in, key presses with their times out.

How it hears a key (ITU-T Q.24 figures; see README "DTMF receiver" for the measured ones):

* The audio is cut into 5 ms blocks (40 samples). For every block of every stream, one matrix
  product gives its complex correlation with the eight Q.23 frequencies (a block DFT at the
  exact frequencies, not rounded to bins). The phases are referred to the stream's sample 0, so
  consecutive blocks can be summed coherently and their phase advance measures frequency.
* A 35 ms window (7 blocks) is a *hit* for key K when, in it: the strongest row and column
  tones are each at least -40 dBm0; each lies within ±2.5 % of its nominal frequency (measured
  from the phase advance between blocks: Q.24 asks to accept ±1.5 % and to reject ±3.5 %); the
  tone is steady (the coherent sum at that frequency keeps 70 % of the incoherent one: speech
  glides, a key does not); each stands 8 dB above the other tones of its group; twist is within
  10 dB normal / 6 dB reverse (Q.24 asks 8 and 4); the two tones hold 60 % of the window's
  energy (talk-off); and every one of the 7 blocks carries both tones at no less than a quarter
  of the window's strongest block, so the tone fills the window. A 23 ms tone touches at most 6
  blocks and can never fill 7; a 40 ms tone always fills 7 wherever it falls.
* A digit starts at its first hit and lasts while each new block still carries both tones
  within 6 dB of the level they had in that hit. Four blocks (20 ms) without them end it: a
  10 ms interruption touches at most three blocks and is bridged, a 40 ms pause ends the digit
  and the next press is a new one.
* Start and end are refined inside the edge blocks from the tone's amplitude there (a block half
  covered carries half the amplitude), so times are good to about a millisecond.

Latency: a digit is reported when its end is known, 20-25 ms of audio after the tone stops
(plus whatever is still buffered in the caller's 20 ms frame).

`ReceiverBank` runs many streams at once: each `feed` decodes and filters every stream's new
blocks in one pass (one matrix product) and only streams that have a candidate window or a digit
in progress reach per-stream Python. `DtmfReceiver` is a bank of one stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .tones import COLUMNS, KEYS, RATE, ROWS, dbm0_to_amplitude
from .ulaw import ULAW_TO_FLOAT32

BLOCK = 40  # samples per block: 5 ms, the receiver's time step
WINDOW = 7  # blocks per decision window: 35 ms, filled by any 40 ms tone, never by a 23 ms one
END_MISSES = 4  # blocks without the tones that end a digit (20 ms; 10 ms gaps are bridged)

MIN_LEVEL_DBM0 = -40.0  # per tone (Q.24: accept from -25, never at -55)
FREQUENCY_TOLERANCE = 0.025  # accept ±1.5 %, reject ±3.5 %: decide half way
STEADINESS = 0.7  # coherent / incoherent window energy of each tone
GROUP_DOMINANCE_DB = 8.0  # the tone over every other tone of its group
NORMAL_TWIST_DB = 10.0  # low tone over high tone
REVERSE_TWIST_DB = 6.0  # high tone over low tone
ENERGY_SHARE = 0.6  # the two tones' share of the window's energy
FILL = 0.25  # each block's tone power over the window's strongest block (-6 dB)
HOLD = 0.25  # each block's tone power over the digit's level while it lasts

FREQUENCIES = np.array(ROWS + COLUMNS)
_PHASE_PERIOD = RATE // BLOCK  # all eight frequencies are whole hertz: phases repeat every 1 s


def _basis() -> np.ndarray:
    """(BLOCK, 16): cos then -sin of each frequency, so block @ basis = the block's correlations."""
    m = np.arange(BLOCK)[:, None]
    angle = 2 * np.pi * FREQUENCIES[None, :] * m / RATE
    return np.hstack([np.cos(angle), -np.sin(angle)]).astype(np.float32)


def _rotations() -> np.ndarray:
    """(period, 8): the phase of each frequency at the start of block p, to refer a block's
    correlation to the stream's sample 0."""
    p = np.arange(_PHASE_PERIOD)[:, None]
    return np.exp(-2j * np.pi * FREQUENCIES[None, :] * p * BLOCK / RATE).astype(np.complex64)


_BASIS = _basis()
_ROTATIONS = _rotations()
# |correlation|² of one block of a tone at MIN_LEVEL_DBM0: (amplitude * BLOCK / 2)²
_MIN_BLOCK_POWER = (dbm0_to_amplitude(MIN_LEVEL_DBM0) * BLOCK / 2) ** 2
_RAMP = np.arange(WINDOW)
_TOLERANCE_RAD = 2 * np.pi * FREQUENCY_TOLERANCE * FREQUENCIES * BLOCK / RATE
_DOMINANCE = 10 ** (GROUP_DOMINANCE_DB / 10)
_NORMAL_TWIST = 10 ** (NORMAL_TWIST_DB / 10)
_REVERSE_TWIST = 10 ** (REVERSE_TWIST_DB / 10)
# A window's competitor tone counts at its own (measured) frequency when that is near nominal.
_COMPETITOR_RAD = 2 * np.pi * 0.035 * FREQUENCIES * BLOCK / RATE


@dataclass(frozen=True)
class Digit:
    """One key press: the key and when it was heard, in ms from the first sample fed to the
    receiver (after its last reset)."""

    digit: str  # "0"-"9", "*", "#", "A"-"D"
    start_ms: int
    end_ms: int


class _Stream:
    """One stream's state between feeds (besides the block history the bank keeps in arrays)."""

    __slots__ = ("amp_last", "end_sample", "key", "misses", "pending", "ref", "slot",
                 "start_sample", "tones")

    def __init__(self, slot: int):
        self.slot = slot
        self.pending = b""  # bytes short of a whole block
        self.key = -1  # the digit in progress (index into KEYS), -1 for none
        self.tones = (0, 0)  # its row and column (indices into FREQUENCIES)
        self.ref = (1.0, 1.0)  # its tones' block power in the hit that started it
        self.start_sample = 0  # where the digit in progress began
        self.misses = 0  # blocks in a row without its tones
        self.end_sample = 0  # where it ends if the current misses end it
        self.amp_last = 0.0


class ReceiverBank:
    """DTMF receivers for many streams, fed together: one vectorised pass per `feed`."""

    def __init__(self, capacity: int = 64):
        self._streams: dict[str, _Stream] = {}
        self._free: list[int] = []
        self._capacity = 0
        self._history = np.zeros((0, WINDOW, 8), np.complex64)  # the last WINDOW blocks
        self._history_energy = np.zeros((0, WINDOW), np.float32)
        self._blocks = np.zeros(0, np.int64)  # blocks since the stream's sample 0
        self._grow(max(1, capacity))

    def _grow(self, capacity: int) -> None:
        extra = capacity - self._capacity
        self._history = np.concatenate([self._history, np.zeros((extra, WINDOW, 8), np.complex64)])
        self._history_energy = np.concatenate(
            [self._history_energy, np.zeros((extra, WINDOW), np.float32)])
        self._blocks = np.concatenate([self._blocks, np.zeros(extra, np.int64)])
        self._free.extend(range(capacity - 1, self._capacity - 1, -1))
        self._capacity = capacity

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def open(self, stream_id: str) -> None:
        """Start listening to a stream (its sample 0 is the first byte fed after this)."""
        if stream_id in self._streams:
            raise ValueError(f"stream {stream_id!r} is already open")
        if not self._free:
            self._grow(self._capacity * 2)
        stream = _Stream(self._free.pop())
        self._clear(stream)
        self._streams[stream_id] = stream

    def close(self, stream_id: str) -> list[Digit]:
        """Stop listening; returns the digit still in progress, if any (its end is now)."""
        stream = self._get(stream_id)
        digits = self._finish(stream)
        del self._streams[stream_id]
        self._free.append(stream.slot)
        return digits

    def flush(self, stream_id: str) -> list[Digit]:
        """The end of a stream's audio: the digit in progress ends; the stream stays open."""
        stream = self._get(stream_id)
        digits = self._finish(stream)
        self._clear(stream)
        return digits

    def reset(self, stream_id: str) -> None:
        """A gap in the stream: forget everything heard so far, including a digit in progress
        (call `flush` first to keep it). Times restart at 0 with the next byte fed."""
        self._clear(self._get(stream_id))

    def feed(self, frames: Mapping[str, bytes]) -> dict[str, list[Digit]]:
        """Each stream's next µ-law bytes (any length); the digits that ended, by stream."""
        streams = [self._get(stream_id) for stream_id in frames]  # all known before any work
        found: dict[str, list[Digit]] = {}
        groups: dict[int, tuple[list[str], list[_Stream], list[bytes]]] = {}
        for (stream_id, data), stream in zip(frames.items(), streams, strict=True):
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"stream {stream_id!r}: audio must be bytes, not "
                                f"{type(data).__name__}")
            if stream.pending:
                data = stream.pending + bytes(data)
            whole = len(data) - len(data) % BLOCK
            stream.pending = bytes(data[whole:])
            if whole:
                ids, members, chunks = groups.setdefault(whole // BLOCK, ([], [], []))
                ids.append(stream_id)
                members.append(stream)
                chunks.append(bytes(data[:whole]) if whole != len(data) else bytes(data))
        for count, (ids, members, chunks) in groups.items():
            self._run(count, ids, members, chunks, found)
        return found

    # ---------------------------------------------------------------------------------------

    def _get(self, stream_id: str) -> _Stream:
        try:
            return self._streams[stream_id]
        except KeyError:
            raise KeyError(f"stream {stream_id!r} is not open") from None

    def _clear(self, stream: _Stream) -> None:
        slot = stream.slot
        self._history[slot] = 0
        self._history_energy[slot] = 0
        self._blocks[slot] = 0
        stream.pending = b""
        stream.key = -1
        stream.misses = 0

    def _finish(self, stream: _Stream) -> list[Digit]:
        if stream.key < 0:
            return []
        end = stream.end_sample if stream.misses else (
            int(self._blocks[stream.slot]) * BLOCK - round((1 - stream.amp_last) * BLOCK))
        digit = _digit(stream.key, stream.start_sample, end)
        stream.key = -1
        return [digit]

    def _run(self, count: int, ids: list[str], members: list[_Stream], chunks: list[bytes],
             found: dict[str, list[Digit]]) -> None:
        """Blocks `count` new blocks of each of these streams through the receiver."""
        slots = np.fromiter((s.slot for s in members), np.int64, len(members))
        samples = ULAW_TO_FLOAT32[np.frombuffer(b"".join(chunks), np.uint8)]
        samples = samples.reshape(len(members) * count, BLOCK)
        products = samples @ _BASIS
        blocks = (products[:, :8] + 1j * products[:, 8:]).astype(np.complex64)
        blocks = blocks.reshape(len(members), count, 8)
        first = self._blocks[slots]
        blocks *= _ROTATIONS[(first[:, None] + np.arange(count)) % _PHASE_PERIOD]
        energy = np.einsum("ij,ij->i", samples, samples).reshape(len(members), count)

        # Every window that ends on a new block: history (WINDOW blocks) then the new ones.
        full = np.concatenate([self._history[slots], blocks], axis=1)
        full_energy = np.concatenate([self._history_energy[slots], energy], axis=1)
        power = (full.real ** 2 + full.imag ** 2)
        self._history[slots] = full[:, -WINDOW:]
        self._history_energy[slots] = full_energy[:, -WINDOW:]
        self._blocks[slots] = first + count

        # A cheap screen (incoherent sums) picks candidate windows for the full test.
        summed = np.cumsum(power, axis=1)
        window_power = summed[:, WINDOW:] - summed[:, :-WINDOW]  # windows ending at new blocks
        summed_energy = np.cumsum(full_energy, axis=1)
        window_energy = summed_energy[:, WINDOW:] - summed_energy[:, :-WINDOW]
        row = window_power[..., :4].max(axis=-1)
        column = window_power[..., 4:].max(axis=-1)
        floor = WINDOW * _MIN_BLOCK_POWER
        candidate = ((row >= floor) & (column >= floor)
                     & (2 * (row + column) >= 0.5 * BLOCK * window_energy))
        hits = np.full((len(members), count), -1, np.int16)
        if candidate.any():
            member, end = np.nonzero(candidate)
            hits[member, end] = _hit_keys(full, full_energy, member, end)

        busy = np.fromiter((s.key >= 0 for s in members), bool, len(members))
        for m in np.nonzero(busy | (hits >= 0).any(axis=1))[0]:
            digits = self._track(members[m], int(first[m]), count, full[m], power[m], hits[m])
            if digits:
                found.setdefault(ids[m], []).extend(digits)

    def _track(self, stream: _Stream, first: int, count: int, full: np.ndarray,
               power: np.ndarray, hits: np.ndarray) -> list[Digit]:
        """The digit state machine over one stream's new blocks. `full` and `power` hold the
        WINDOW blocks of history then the `count` new ones; `first` numbers the first new one."""
        digits = []
        for j in range(count):
            index = WINDOW + j  # this block in `full`
            block = first + j  # and in the stream
            if stream.key >= 0:
                row, column = stream.tones
                amp = _amplitude(power[index], stream.ref, row, column)
                if power[index, row] >= HOLD * stream.ref[0] and \
                        power[index, column] >= HOLD * stream.ref[1]:
                    stream.misses = 0
                    stream.amp_last = amp
                else:
                    if stream.misses == 0:  # the tone stops in this block or the one before
                        last = stream.amp_last
                        stream.end_sample = block * BLOCK - round(
                            (1 - last - (amp if last > 0.9 else 0.0)) * BLOCK)
                    stream.misses += 1
                    if stream.misses >= END_MISSES:
                        digits.append(_digit(stream.key, stream.start_sample, stream.end_sample))
                        stream.key = -1
                        stream.misses = 0
            if stream.key < 0 and hits[j] >= 0:
                key = int(hits[j])
                row, column = key // 4, 4 + key % 4
                window = power[index - WINDOW + 1:index + 1]
                ref = (float(window[:, row].mean()), float(window[:, column].mean()))
                inside = _amplitude(window[0], ref, row, column)
                before = _amplitude(power[index - WINDOW], ref, row, column)
                first_block = block - WINDOW + 1
                stream.key, stream.tones, stream.ref = key, (row, column), ref
                stream.start_sample = max(0, first_block * BLOCK + round(
                    (1 - inside - (before if inside > 0.9 else 0.0)) * BLOCK))
                stream.misses = 0
                stream.amp_last = _amplitude(power[index], ref, row, column)
        return digits


def _amplitude(power: np.ndarray, ref: tuple[float, float], row: int, column: int) -> float:
    """How much of a block the digit's tones fill (0-1), from their amplitude against the
    digit's level: a block the tone covers half of carries half the amplitude."""
    a = 0.5 * (np.sqrt(power[row] / ref[0]) + np.sqrt(power[column] / ref[1]))
    return float(min(1.0, a))


def _digit(key: int, start_sample: int, end_sample: int) -> Digit:
    end_sample = max(end_sample, start_sample)
    return Digit(KEYS[key], round(start_sample * 1000 / RATE), round(end_sample * 1000 / RATE))


def _hit_keys(full: np.ndarray, full_energy: np.ndarray, member: np.ndarray,
              end: np.ndarray) -> np.ndarray:
    """The full test of candidate windows: the key each one holds (index into KEYS) or -1.
    `end` numbers the window's last block among the new ones."""
    rows = (end + 1)[:, None] + _RAMP[None, :]  # the window's blocks in `full`
    window = full[member[:, None], rows]  # (candidates, WINDOW, 8)
    energy = full_energy[member[:, None], rows].sum(axis=1)
    power = window.real ** 2 + window.imag ** 2
    # Frequency: the mean phase advance from one block to the next, per tone.
    advance = np.angle((window[:, 1:] * window[:, :-1].conj()).sum(axis=1))
    ramp = np.exp(-1j * advance[:, None, :] * _RAMP[None, :, None]).astype(np.complex64)
    steady = np.abs((window * ramp).sum(axis=1)) ** 2  # coherent at the measured frequency
    nominal = np.abs(window.sum(axis=1)) ** 2  # coherent at the nominal frequency
    incoherent = WINDOW * power.sum(axis=1)
    row = steady[:, :4].argmax(axis=1)
    column = 4 + steady[:, 4:].argmax(axis=1)
    pick = np.arange(len(member))
    low, high = steady[pick, row], steady[pick, column]
    ok = (np.abs(advance[pick, row]) <= _TOLERANCE_RAD[row]) & \
        (np.abs(advance[pick, column]) <= _TOLERANCE_RAD[column])
    ok &= (low >= STEADINESS * incoherent[pick, row]) & \
        (high >= STEADINESS * incoherent[pick, column])
    # Tone power over the window, as a mean square: steady = (WINDOW * amplitude * BLOCK / 2)².
    scale = 2.0 / (WINDOW * BLOCK) ** 2
    level_floor = dbm0_to_amplitude(MIN_LEVEL_DBM0) ** 2 / 2
    ok &= (low * scale >= level_floor) & (high * scale >= level_floor)
    ok &= (low <= _NORMAL_TWIST * high) & (high <= _REVERSE_TWIST * low)
    ok &= (low + high) * scale >= ENERGY_SHARE * energy / (WINDOW * BLOCK)
    competitor = np.where(np.abs(advance) <= _COMPETITOR_RAD, steady, nominal)
    competitor[pick, row] = 0
    competitor[pick, column] = 0
    ok &= (competitor[:, :4].max(axis=1) * _DOMINANCE <= low) & \
        (competitor[:, 4:].max(axis=1) * _DOMINANCE <= high)
    ok &= (power[pick, :, row].min(axis=1) >= FILL * power[pick, :, row].max(axis=1)) & \
        (power[pick, :, column].min(axis=1) >= FILL * power[pick, :, column].max(axis=1))
    return np.where(ok, row * 4 + column - 4, -1).astype(np.int16)


class DtmfReceiver:
    """The receiver for one stream (a bank of one)."""

    _ID = "stream"

    def __init__(self) -> None:
        self._bank = ReceiverBank(capacity=1)
        self._bank.open(self._ID)

    def feed(self, ulaw: bytes) -> list[Digit]:
        """The next µ-law bytes (any length, 8 kHz); the digits that ended in them."""
        return self._bank.feed({self._ID: ulaw}).get(self._ID, [])

    def reset(self) -> None:
        """A gap in the stream: drop partial state (and a digit in progress)."""
        self._bank.reset(self._ID)

    def flush(self) -> list[Digit]:
        """The end of the stream: the digit in progress, if any."""
        return self._bank.flush(self._ID)
