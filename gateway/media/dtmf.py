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
HARMONIC_DB = 15.0  # each tone over its harmonic (below)
FILL = 0.35  # each block's tone amplitude, in phase, over the window's strongest block
HOLD = 0.5  # each block's tone amplitudes over the digit's level while it lasts (-6 dB)

TONES = np.array(ROWS + COLUMNS)
# Each tone's harmonic that must stay quiet (a phone's tone is a clean sine, a voice or an
# instrument's note is not): the column tones' 2nd (2418-3266 Hz) and the row tones' 3rd
# (2091-2823 Hz); a row tone's 2nd would fall among the column tones.
HARMONIC = np.array([3, 3, 3, 3, 2, 2, 2, 2])
FREQUENCIES = np.concatenate([TONES, TONES * HARMONIC])  # the 16 correlations per block
BANDS = len(FREQUENCIES)
_PHASE_PERIOD = RATE // BLOCK  # all eight frequencies are whole hertz: phases repeat every 1 s


def _basis() -> np.ndarray:
    """(BLOCK, 32): cos then -sin of each frequency, so block @ basis = the block's correlations."""
    m = np.arange(BLOCK)[:, None]
    angle = 2 * np.pi * FREQUENCIES[None, :] * m / RATE
    return np.hstack([np.cos(angle), -np.sin(angle)]).astype(np.float32)


def _rotations() -> np.ndarray:
    """(period, 16): the phase of each frequency at the start of block p, to refer a block's
    correlation to the stream's sample 0."""
    p = np.arange(_PHASE_PERIOD)[:, None]
    return np.exp(-2j * np.pi * FREQUENCIES[None, :] * p * BLOCK / RATE).astype(np.complex64)


_BASIS = _basis()
_ROTATIONS = _rotations()
# |correlation|² of one block of a tone at MIN_LEVEL_DBM0: (amplitude * BLOCK / 2)²
_MIN_BLOCK_POWER = (dbm0_to_amplitude(MIN_LEVEL_DBM0) * BLOCK / 2) ** 2
_RAMP = np.arange(WINDOW)
_TOLERANCE_RAD = 2 * np.pi * FREQUENCY_TOLERANCE * TONES * BLOCK / RATE
_DOMINANCE = 10 ** (GROUP_DOMINANCE_DB / 10)
_NORMAL_TWIST = 10 ** (NORMAL_TWIST_DB / 10)
_REVERSE_TWIST = 10 ** (REVERSE_TWIST_DB / 10)
# A window's competitor tone counts at its own (measured) frequency when that is near nominal.
_COMPETITOR_RAD = 2 * np.pi * 0.035 * TONES * BLOCK / RATE
_HARMONIC_LIMIT = 10 ** (-HARMONIC_DB / 10)


@dataclass(frozen=True)
class Digit:
    """One key press: the key and when it was heard, in ms from the first sample fed to the
    receiver (after its last reset)."""

    digit: str  # "0"-"9", "*", "#", "A"-"D"
    start_ms: int
    end_ms: int


class _Stream:
    """One stream's state between feeds (besides the block history the bank keeps in arrays)."""

    __slots__ = ("amp_last", "end_sample", "key", "misses", "mixing", "pending", "ref", "slot",
                 "start_sample", "tones")

    def __init__(self, slot: int):
        self.slot = slot
        self.pending = b""  # bytes short of a whole block
        self.key = -1  # the digit in progress (index into KEYS), -1 for none
        self.tones = (0, 0)  # its row and column (indices into TONES)
        self.ref = (1.0, 1.0)  # its tones' block amplitude in the hit that started it
        self.mixing = (0j, 0j)  # how much each of its tones leaks into the other's correlation
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
        self._history = np.zeros((0, WINDOW, BANDS), np.complex64)  # the last WINDOW blocks
        self._history_energy = np.zeros((0, WINDOW), np.float32)
        self._blocks = np.zeros(0, np.int64)  # blocks since the stream's sample 0
        self._grow(max(1, capacity))

    def _grow(self, capacity: int) -> None:
        extra = capacity - self._capacity
        self._history = np.concatenate([self._history, np.zeros((extra, WINDOW, BANDS), np.complex64)])
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
        blocks = (products[:, :BANDS] + 1j * products[:, BANDS:]).astype(np.complex64)
        blocks = blocks.reshape(len(members), count, BANDS)
        first = self._blocks[slots]
        blocks *= _ROTATIONS[(first[:, None] + np.arange(count)) % _PHASE_PERIOD]
        energy = np.einsum("ij,ij->i", samples, samples).reshape(len(members), count)

        # Every window that ends on a new block: history (WINDOW blocks) then the new ones.
        full = np.concatenate([self._history[slots], blocks], axis=1)
        full_energy = np.concatenate([self._history_energy[slots], energy], axis=1)
        tones = full[..., :8]
        power = tones.real ** 2 + tones.imag ** 2
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
        mixing = np.zeros((len(members), count, 2), np.complex128)
        if candidate.any():
            member, end = np.nonzero(candidate)
            hits[member, end], mixing[member, end] = _hit_keys(
                full, full_energy, first[member] - WINDOW, member, end)

        busy = np.fromiter((s.key >= 0 for s in members), bool, len(members))
        for m in np.nonzero(busy | (hits >= 0).any(axis=1))[0]:
            digits = self._track(members[m], int(first[m]), count, full[m], hits[m], mixing[m])
            if digits:
                found.setdefault(ids[m], []).extend(digits)

    def _track(self, stream: _Stream, first: int, count: int, full: np.ndarray,
               hits: np.ndarray, mixing: np.ndarray) -> list[Digit]:
        """The digit state machine over one stream's new blocks. `full` holds the WINDOW blocks
        of history then the `count` new ones; `first` numbers the first new one in the stream."""
        digits = []
        base = first - WINDOW  # the stream's number for full[0]
        amps = _Amplitudes(full, base, stream)
        for j in range(count):
            index = WINDOW + j  # this block in `full`
            if stream.key >= 0:
                amp = amps[index]
                if amp.min() >= HOLD:
                    stream.misses = 0
                    stream.amp_last = float(min(1.0, amp.mean()))
                else:
                    if stream.misses == 0:  # the tone stops in this block or the one before
                        last = stream.amp_last
                        partial = float(min(1.0, amp.mean())) if last > 0.9 else 0.0
                        stream.end_sample = (base + index) * BLOCK - round(
                            (1 - last - partial) * BLOCK)
                    stream.misses += 1
                    if stream.misses >= END_MISSES:
                        digits.append(_digit(stream.key, stream.start_sample, stream.end_sample))
                        stream.key = -1
                        stream.misses = 0
            if stream.key < 0 and hits[j] >= 0:
                key = int(hits[j])
                stream.key, stream.tones = key, (key // 4, 4 + key % 4)
                stream.mixing = (complex(mixing[j, 0]), complex(mixing[j, 1]))
                stream.ref = (1.0, 1.0)
                window = _tone_amplitudes(full, base, stream, index - WINDOW + 1, index + 1)
                stream.ref = tuple(window.mean(axis=0))
                amps = _Amplitudes(full, base, stream)

                def fill(i: int) -> float:
                    return float(min(1.0, amps[i].mean()))

                # The tone may have begun before the window (an earlier window failed a test):
                # walk back over the full blocks kept in history, then into the partial one.
                begin = index - WINDOW + 1
                while begin > 0 and fill(begin - 1) > 0.9:
                    begin -= 1
                inside = fill(begin)
                before = fill(begin - 1) if begin and inside > 0.9 else 0.0
                stream.start_sample = max(0, (base + begin) * BLOCK + round(
                    (1 - inside - before) * BLOCK))
                stream.misses = 0
                stream.amp_last = fill(index)
        return digits


class _Amplitudes:
    """A digit's tone amplitudes block by block, computed a few dozen blocks at a time as the
    state machine asks for them (a long feed may hold thousands of digits)."""

    SPAN = 64

    def __init__(self, full: np.ndarray, base: int, stream: _Stream):
        self._full, self._base, self._stream = full, base, stream
        self._from, self._values = 0, np.zeros((0, 2))

    def __getitem__(self, index: int) -> np.ndarray:
        offset = index - self._from
        if not 0 <= offset < len(self._values):
            self._from, offset = index, 0
            self._values = _tone_amplitudes(self._full, self._base, self._stream, index,
                                            min(len(self._full), index + self.SPAN))
        return self._values[offset]


def _tone_amplitudes(full: np.ndarray, base: int, stream: _Stream, start: int,
                     stop: int) -> np.ndarray:
    """(blocks, 2): the digit's row and column amplitudes in blocks [start, stop) of `full`,
    freed of each other's leakage, over the digit's reference level (a block the tone covers
    half of carries half the amplitude)."""
    row, column = stream.tones
    phases = _ROTATIONS[(base + np.arange(start, stop)) % _PHASE_PERIOD]
    low, high = _unmix(full[start:stop, row], full[start:stop, column],
                       phases[:, row] / phases[:, column], *stream.mixing)
    return np.abs(np.stack([low, high], axis=1)) / np.array(stream.ref)


def _unmix(low: np.ndarray, high: np.ndarray, turn: np.ndarray, into_low: complex,
           into_high: complex) -> tuple[np.ndarray, np.ndarray]:
    """A 5 ms block cannot keep a row tone out of a column tone's correlation (they are only
    268-936 Hz apart): each block's pair of correlations is the pair of tones mixed by a 2x2
    matrix known from their frequencies, so solve it. `turn` is each block's phase of the
    column tone relative to the row tone; `into_low`/`into_high` are the leak factors."""
    det = 1 - into_low * into_high
    return ((low - into_low * turn * high) / det,
            (high - into_high * np.conj(turn) * low) / det)


def _leak(delta: np.ndarray) -> np.ndarray:
    """Σ_m exp(j·delta·m) over one block: how a tone `delta` rad/sample away from a frequency
    shows in that frequency's block correlation (BLOCK when delta is 0)."""
    half = delta / 2
    small = np.abs(np.sin(half)) < 1e-9
    ratio = np.sin(half * BLOCK) / np.where(small, 1.0, np.sin(half))
    return np.exp(1j * half * (BLOCK - 1)) * np.where(small, BLOCK, ratio)


def _digit(key: int, start_sample: int, end_sample: int) -> Digit:
    end_sample = max(end_sample, start_sample)
    return Digit(KEYS[key], round(start_sample * 1000 / RATE), round(end_sample * 1000 / RATE))


def _hit_keys(full: np.ndarray, full_energy: np.ndarray, base: np.ndarray, member: np.ndarray,
              end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full test of candidate windows: the key each one holds (index into KEYS) or -1, and
    its tones' leak factors. `end` numbers the window's last block among the new ones, `base`
    is the stream's number for full[member, 0]."""
    key, mixing, checks = _window_checks(full, full_energy, base, member, end)
    ok = np.logical_and.reduce(list(checks.values()))
    return np.where(ok, key, -1).astype(np.int16), mixing


def _window_checks(full: np.ndarray, full_energy: np.ndarray, base: np.ndarray,
                   member: np.ndarray, end: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each candidate window's strongest key, its leak factors and every test's outcome."""
    rows = (end + 1)[:, None] + _RAMP[None, :]  # the window's blocks in `full`
    window = full[member[:, None], rows]  # (candidates, WINDOW, BANDS)
    harmonics, window = window[..., 8:], window[..., :8]
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
    checks = {
        "frequency": (np.abs(advance[pick, row]) <= _TOLERANCE_RAD[row])
        & (np.abs(advance[pick, column]) <= _TOLERANCE_RAD[column]),
        "steady": (low >= STEADINESS * incoherent[pick, row])
        & (high >= STEADINESS * incoherent[pick, column]),
    }
    # Tone power over the window, as a mean square: steady = (WINDOW * amplitude * BLOCK / 2)².
    scale = 2.0 / (WINDOW * BLOCK) ** 2
    level_floor = dbm0_to_amplitude(MIN_LEVEL_DBM0) ** 2 / 2
    checks["level"] = (low * scale >= level_floor) & (high * scale >= level_floor)
    checks["twist"] = (low <= _NORMAL_TWIST * high) & (high <= _REVERSE_TWIST * low)
    checks["share"] = (low + high) * scale >= ENERGY_SHARE * energy / (WINDOW * BLOCK)
    competitor = np.where(np.abs(advance) <= _COMPETITOR_RAD, steady, nominal)
    competitor[pick, row] = 0
    competitor[pick, column] = 0
    checks["dominance"] = (competitor[:, :4].max(axis=1) * _DOMINANCE <= low) \
        & (competitor[:, 4:].max(axis=1) * _DOMINANCE <= high)
    # Fill: every block carries the tone in phase with the window's fitted sinusoid (a block of
    # noise beside a short tone projects at random), at FILL of the strongest block's amplitude;
    # first free each block's pair of correlations from the other tone's leakage.
    measured = TONES + advance / (2 * np.pi * BLOCK / RATE)  # Hz
    low_hz, high_hz = measured[pick, row], measured[pick, column]
    radians = 2 * np.pi / RATE
    into_low = _leak((high_hz - TONES[row]) * radians) / _leak((high_hz - TONES[column]) * radians)
    into_high = _leak((low_hz - TONES[column]) * radians) / _leak((low_hz - TONES[row]) * radians)
    phases = _ROTATIONS[(base[:, None] + rows) % _PHASE_PERIOD]  # (candidates, WINDOW, 16)
    turn = phases[pick, :, row] / phases[pick, :, column]
    pair = _unmix(window[pick, :, row], window[pick, :, column], turn,
                  into_low[:, None], into_high[:, None])
    checks["fill"] = np.ones(len(member), bool)
    for tone, series in zip((row, column), pair, strict=True):
        fitted = (series * ramp[pick, :, tone]).sum(axis=1)  # its angle: the phase at block 0
        along = (series * ramp[pick, :, tone] * np.exp(-1j * np.angle(fitted))[:, None]).real
        checks["fill"] &= along.min(axis=1) >= FILL * along.max(axis=1)
    # Harmonics, at the multiple of the tone's measured frequency.
    checks["harmonics"] = np.ones(len(member), bool)
    for tone, fundamental in ((row, low), (column, high)):
        turn = HARMONIC[tone][:, None] * advance[pick, tone][:, None] * _RAMP[None, :]
        harmonic = np.abs((harmonics[pick, :, tone] * np.exp(-1j * turn)).sum(axis=1)) ** 2
        checks["harmonics"] &= harmonic <= _HARMONIC_LIMIT * fundamental
    return row * 4 + column - 4, np.stack([into_low, into_high], axis=1), checks


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
