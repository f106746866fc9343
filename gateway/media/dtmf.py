"""The streaming DTMF receiver: 8 kHz G.711 µ-law in, key presses with their times out.

How it hears a key (ITU-T Q.24 figures; README "DTMF receiver" has the measured ones):

* The audio is cut into 5 ms blocks (40 samples). For every block of every stream, one matrix
  product gives its complex correlation with the eight Q.23 frequencies (a block DFT at the
  exact frequencies, not rounded to bins). The phases are referred to the stream's sample 0, so
  consecutive blocks sum coherently and their phase advance measures frequency. A 5 ms block
  cannot keep a row tone out of a column tone's correlation, so each block's pair of
  correlations is unmixed with the 2x2 matrix the two measured frequencies give.
* A 35 ms window (7 blocks) is a *hit* for key K when, in it: the strongest row and column
  tones are each at least -40 dBm0; each lies within ±2.0 % of its nominal frequency (Q.24:
  accept ±1.5 %, reject ±3.5 %; nearer 1.5 because voices' harmonics land anywhere); each is
  steady (its coherent sum keeps 70 % of the incoherent one: voices glide, keys do not); each
  stands 8 dB above what remains in the other channels of its group once the two tones'
  predicted leakage is removed (a voice's other harmonics, wherever they are); twist is within
  10 dB normal / 6 dB reverse (Q.24: 8 and 4); the pair holds 70 % of the window's energy (6 dB
  SNR leaves 80 %); the row tone's 3rd and the column tone's 2nd harmonics are 15 dB down (a
  phone's tone is a clean sine, an instrument's note is not); and every block carries both tones
  in phase with the fitted sinusoid at 35 % or more of the strongest block's amplitude, so the
  tone fills the window. A 23 ms tone touches at most 6 blocks and can never fill 7; a 40 ms
  tone always fills 7 wherever it falls.
* A digit starts at its first hit and lasts while each new block still carries both tones
  within 6 dB of the level they had in that hit. Four blocks (20 ms) without them end it: a
  10 ms interruption touches at most three blocks and is bridged, a 40 ms pause ends the digit
  and the next press is a new one.
* Start and end are refined inside the edge blocks from the tone's amplitude there (a block half
  covered carries half the amplitude), to within 2 ms.

Latency: a digit is reported when its end is known, 20-25 ms of audio after the tone stops
(plus whatever is still buffered in the caller's 20 ms frame).

`ReceiverBank` runs many streams at once: each `feed` decodes and filters every stream's new
blocks in one pass (one matrix product) and screens every window cheaply; the full test runs on
candidate windows only, a digit that holds through the new blocks is extended without Python,
and only streams where a digit may begin or end reach the per-stream state machine.
`DtmfReceiver` is a bank of one stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .tones import COLUMNS, KEYS, RATE, ROWS, dbm0_to_amplitude
from .ulaw import ulaw_to_float32

BLOCK = 40  # samples per block: 5 ms, the receiver's time step
WINDOW = 7  # blocks per decision window: 35 ms, filled by any 40 ms tone, never by a 23 ms one
END_MISSES = 4  # blocks without the tones that end a digit (20 ms; 10 ms gaps are bridged)

MIN_LEVEL_DBM0 = -40.0  # per tone (Q.24: accept from -25, never at -55)
FREQUENCY_TOLERANCE = 0.02  # accept ±1.5 %, reject ±3.5 %: nearer 1.5 (speech)
STEADINESS = 0.7  # coherent / incoherent window energy of each tone
GROUP_DOMINANCE_DB = 8.0  # the tone over every other tone of its group
NORMAL_TWIST_DB = 10.0  # low tone over high tone
REVERSE_TWIST_DB = 6.0  # high tone over low tone
ENERGY_SHARE = 0.7  # the two tones' share of the window's energy (6 dB SNR: 0.8)
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
_TONE_COLUMNS = np.r_[0:8, BANDS:BANDS + 8]  # cos and -sin of the eight tones alone
_TONE_BASIS = np.ascontiguousarray(_BASIS[:, _TONE_COLUMNS])
_SILENCE = 0xFF  # the µ-law code of 0
_ROTATIONS = _rotations()
# |correlation|² of one block of a tone at MIN_LEVEL_DBM0: (amplitude * BLOCK / 2)²
_MIN_BLOCK_POWER = (dbm0_to_amplitude(MIN_LEVEL_DBM0) * BLOCK / 2) ** 2
_EDGE_FLOOR = _MIN_BLOCK_POWER * FILL ** 2  # a block at the edge of a window that can hit
_RAMP = np.arange(WINDOW)
_TOLERANCE_RAD = 2 * np.pi * FREQUENCY_TOLERANCE * TONES * BLOCK / RATE
_DOMINANCE = 10 ** (GROUP_DOMINANCE_DB / 10)
_NORMAL_TWIST = 10 ** (NORMAL_TWIST_DB / 10)
_REVERSE_TWIST = 10 ** (REVERSE_TWIST_DB / 10)
_HARMONIC_LIMIT = 10 ** (-HARMONIC_DB / 10)


@dataclass(frozen=True)
class Digit:
    """One key press: the key and when it was heard, in ms from the first sample fed to the
    receiver (after its last reset)."""

    digit: str  # "0"-"9", "*", "#", "A"-"D"
    start_ms: int
    end_ms: int


_SLICE = 2048  # blocks decoded at a time (320 KB of samples)
RING = 24  # blocks of raw correlations kept per stream: a window, and a start's walk back


# Per stream (one row per slot):
#   _ring: the last RING blocks' µ-law bytes, at row (block number % RING);
#   _screen: the last WINDOW - 1 blocks' strongest row and column powers and energies;
#   _blocks: blocks heard since sample 0;
#   the digit in progress: _key (index into KEYS, -1 for none), _mixing (its tones' leak
#   factors), _ref (its tones' amplitude in the hit that started it), _misses (blocks in a
#   row without them), _amp (how much of the last block held them), _start and _end
#   (samples: where it began, and where it ends if the current misses end it).
_STATE = {"_ring": ((RING, BLOCK), np.uint8), "_screen": ((WINDOW - 1, 3), np.float32),
          "_blocks": ((), np.int64),
          "_key": ((), np.int16), "_mixing": ((2,), np.complex128),
          "_ref": ((2,), np.float64), "_misses": ((), np.int32), "_amp": ((), np.float64),
          "_start": ((), np.int64), "_end": ((), np.int64)}


class _Stream:
    """One stream's bytes short of a whole block; the rest of its state is in the bank's arrays,
    row `slot`."""

    __slots__ = ("pending", "slot")

    def __init__(self, slot: int):
        self.slot = slot
        self.pending = b""


class ReceiverBank:
    """DTMF receivers for many streams, fed together: one vectorised pass per `feed`."""

    def __init__(self, capacity: int = 64):
        self._streams: dict[str, _Stream] = {}
        self._free: list[int] = []
        self._capacity = 0
        self._last_ids: list[str] = []
        self._last_slots = np.zeros(0, np.int64)
        self._pending = 0  # streams holding a partial block
        self._buffers: dict[str, np.ndarray] = {}
        self._grow(max(1, capacity))

    def _grow(self, capacity: int) -> None:
        for name, (shape, dtype) in _STATE.items():
            old = getattr(self, name, np.zeros((0, *shape), dtype))
            setattr(self, name, np.concatenate([old, np.zeros((capacity - len(old), *shape),
                                                                dtype)]))
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
        self._last_ids = []

    def close(self, stream_id: str) -> list[Digit]:
        """Stop listening; returns the digit still in progress, if any (its end is now)."""
        stream = self._get(stream_id)
        digits = self._finish(stream.slot)
        self._clear(stream)
        del self._streams[stream_id]
        self._free.append(stream.slot)
        self._last_ids = []
        return digits

    def flush(self, stream_id: str) -> list[Digit]:
        """The end of a stream's audio: the digit in progress ends; the stream stays open."""
        stream = self._get(stream_id)
        digits = self._finish(stream.slot)
        self._clear(stream)
        return digits

    def reset(self, stream_id: str) -> None:
        """A gap in the stream: forget everything heard so far, including a digit in progress
        (call `flush` first to keep it). Times restart at 0 with the next byte fed."""
        self._clear(self._get(stream_id))

    def feed(self, frames: Mapping[str, bytes]) -> dict[str, list[Digit]]:
        """Each stream's next µ-law bytes (any length); the digits that ended, by stream."""
        found: dict[str, list[Digit]] = {}
        ids = list(frames)
        chunks = list(frames.values())
        if ids != self._last_ids:  # the same streams as last time (a server's usual call)?
            slots = [self._get(stream_id).slot for stream_id in ids]  # all known before work
            self._last_ids, self._last_slots = ids, np.array(slots, np.int64)
        sizes = set(map(len, chunks))
        size = sizes.pop() if len(sizes) == 1 else 0
        if size and size % BLOCK == 0 and not self._pending:
            try:
                data = b"".join(chunks)
            except TypeError:
                pass  # not all bytes: the general path says which stream
            else:
                self._run(size // BLOCK, ids, self._last_slots, data, found)
                return found
        groups: dict[int, tuple[list[str], list[int], list[bytes]]] = {}
        for stream_id, data in zip(ids, chunks, strict=True):
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"stream {stream_id!r}: audio must be bytes, not "
                                f"{type(data).__name__}")
        for stream_id, data in zip(ids, chunks, strict=True):
            stream = self._streams[stream_id]
            self._pending -= bool(stream.pending)
            if stream.pending:
                data = stream.pending + bytes(data)
            whole = len(data) - len(data) % BLOCK
            stream.pending = bytes(data[whole:])
            self._pending += bool(stream.pending)
            if whole:
                group = groups.setdefault(whole // BLOCK, ([], [], []))
                group[0].append(stream_id)
                group[1].append(stream.slot)
                group[2].append(bytes(data[:whole]))
        for count, (group_ids, slots, data_list) in groups.items():
            self._run(count, group_ids, np.array(slots, np.int64), b"".join(data_list), found)
        return found

    # ---------------------------------------------------------------------------------------

    def _scratch(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A reusable float32 work array (fresh pages cost more than the arithmetic)."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, np.float32)
        return buffer[:size].reshape(shape)

    def _get(self, stream_id: str) -> _Stream:
        try:
            return self._streams[stream_id]
        except KeyError:
            raise KeyError(f"stream {stream_id!r} is not open") from None

    def _clear(self, stream: _Stream) -> None:
        slot = stream.slot
        for name in _STATE:
            getattr(self, name)[slot] = 0
        self._ring[slot] = _SILENCE
        self._key[slot] = -1
        self._pending -= bool(stream.pending)
        stream.pending = b""

    def _finish(self, slot: int) -> list[Digit]:
        key = int(self._key[slot])
        if key < 0:
            return []
        end = int(self._end[slot]) if self._misses[slot] else (
            int(self._blocks[slot]) * BLOCK - round((1 - float(self._amp[slot])) * BLOCK))
        self._key[slot] = -1
        return [_digit(key, int(self._start[slot]), end)]

    def _run(self, count: int, ids: list[str], slots: np.ndarray, data: bytes,
             found: dict[str, list[Digit]]) -> None:
        """`count` new blocks of each of these streams through the receiver."""
        streams = len(slots)
        codes = np.frombuffer(data, np.uint8).reshape(streams, count, BLOCK)
        rows = codes.reshape(streams * count, BLOCK)
        tones = self._scratch("tones", (len(rows), 16))
        energy = self._scratch("energy", (len(rows),))
        # In slices small enough for the decoded samples to stay in cache between the
        # decoding, the matrix product and the energies.
        for start in range(0, len(rows), _SLICE):
            part = rows[start:start + _SLICE]
            samples = ulaw_to_float32(part, out=self._scratch("samples", part.shape))
            np.matmul(samples, _TONE_BASIS, out=tones[start:start + len(part)])
            np.einsum("ij,ij->i", samples, samples, out=energy[start:start + len(part)])
        tones = tones.reshape(streams, count, 16)
        energy = energy.reshape(streams, count)
        first = self._blocks[slots]
        batch = _Batch(self._ring, slots, first, codes, tones)

        # A cheap screen picks the candidate windows for the full test: per block, the
        # strongest row and column tone powers and the energy; per window ending at a new
        # block, their sums (a bound on the window's best row and column).
        squares = np.multiply(tones, tones, out=self._scratch("squares", (streams, count, 16)))
        power = np.add(squares[..., :8], squares[..., 8:],
                       out=self._scratch("power", (streams, count, 8)))
        screen = self._scratch("screen", (streams, count + WINDOW - 1, 3))
        screen[:, :WINDOW - 1] = self._screen[slots]
        np.maximum(np.maximum(power[..., 0], power[..., 1]),
                   np.maximum(power[..., 2], power[..., 3]), out=screen[:, WINDOW - 1:, 0])
        np.maximum(np.maximum(power[..., 4], power[..., 5]),
                   np.maximum(power[..., 6], power[..., 7]), out=screen[:, WINDOW - 1:, 1])
        screen[:, WINDOW - 1:, 2] = energy
        self._screen[slots] = screen[:, -(WINDOW - 1):]
        if count <= 2 * WINDOW:  # a running sum: a few small steps beat a cumulative sum
            window = np.empty((streams, count, 3), np.float32)
            window[:, 0] = screen[:, :WINDOW].sum(axis=1)
            for j in range(1, count):
                window[:, j] = window[:, j - 1] + screen[:, j + WINDOW - 1] - screen[:, j - 1]
        else:
            summed = np.cumsum(screen, axis=1)
            window = summed[:, WINDOW - 1:].copy()
            window[:, 1:] -= summed[:, :-WINDOW]
        row, column, window_energy = window[..., 0], window[..., 1], window[..., 2]
        floor = WINDOW * _MIN_BLOCK_POWER
        candidate = ((row >= floor) & (column >= floor)
                     & (2 * (row + column) >= 0.5 * BLOCK * window_energy))
        # ... and both of the window's end blocks carry a tone in each group (not a window
        # half over a tone that is starting or has stopped).
        for edge in (screen[:, :count], screen[:, WINDOW - 1:]):
            candidate &= (edge[..., 0] >= _EDGE_FLOOR) & (edge[..., 1] >= _EDGE_FLOOR)
        # A stream whose digit holds through every new block needs no new hit.
        active = self._key[slots] >= 0
        busy = np.nonzero(active)[0]
        held = np.zeros(0, bool)
        if len(busy):
            busy_slots = slots[busy]
            key = self._key[busy_slots].astype(np.int64)
            amps = _amplitudes(batch.tones(busy, np.arange(count)[None, :], key),
                               first[busy][:, None] + np.arange(count)[None, :], key,
                               self._mixing[busy_slots], self._ref[busy_slots])
            held = (amps >= HOLD).all(axis=(1, 2)) & (self._misses[busy_slots] == 0)
            self._amp[busy_slots[held]] = np.minimum(1.0, amps[held, -1].mean(axis=-1))
            candidate[busy[held]] = False
            if count <= 2 * END_MISSES:
                # Nor do the windows of a digit in progress that end before the block where
                # it can end (its misses run to END_MISSES): a hit there would be ignored.
                present = (amps >= HOLD).all(axis=2)
                run = self._misses[busy_slots].astype(np.int64)
                ends = np.full(len(busy), count)
                for j in range(count):
                    run = np.where(present[:, j], 0, run + 1)
                    ends = np.where((run >= END_MISSES) & (ends == count), j, ends)
                candidate[busy] &= np.arange(count)[None, :] >= ends[:, None]
        hits = mixing = None
        # A digit that begins in a batch of at most END_MISSES blocks cannot end in it, so a
        # quiet stream's later windows matter only until one hits: test its earliest first.
        # A longer batch (a file, a backlog) has every candidate tested at once.
        # Two rounds: each stream's earliest candidate, then all the rest of the streams that
        # did not hit (each round's fixed cost is worth more than a few extra windows).
        rounds = 2 if count <= END_MISSES else 1
        untested = candidate if rounds > 1 else None
        for round_ in range(rounds):
            if untested is not None and round_ == 0:
                earliest = untested.argmax(axis=1)
                member = np.nonzero(untested[np.arange(streams), earliest])[0]
                end = earliest[member]
            else:
                member, end = np.nonzero(candidate if untested is None else untested)
            if not len(member):
                break
            blocks = end[:, None] - WINDOW + 1 + _RAMP[None, :]  # relative to the first new
            window = batch.correlations(member, blocks)
            key, mix, checks = _window_checks(window, window_energy[member, end],
                                              first[member][:, None] + blocks)
            ok = np.logical_and.reduce(list(checks.values()))
            if ok.any():
                if hits is None:
                    hits = np.full((streams, count), -1, np.int16)
                    mixing = np.zeros((streams, count, 2), np.complex128)
                hits[member[ok], end[ok]] = key[ok]
                mixing[member[ok], end[ok]] = mix[ok]
            if untested is None:
                break
            untested[member, end] = False
            # (a stream with a digit in progress may see it end, then a new one begin)
            untested[member[ok & ~active[member]]] = False

        # Digits in progress: every new block that still holds both tones extends them, all
        # at once; streams where a digit may end or begin go through the state machine.
        careful = set() if hits is None else set(
            np.nonzero((hits >= 0).any(axis=1) & ~active)[0].tolist())
        careful.update(busy[~held].tolist())
        if careful:
            # One vectorised pass for the amplitudes each careful stream will most likely ask
            # for: its digit's tones, or those of its first hit, over the ring and the batch.
            members = np.array(sorted(careful))
            keys = self._key[slots[members]].astype(np.int64)
            mixes = self._mixing[slots[members]].copy()
            sources = np.full(len(members), -1)  # -1: the digit in progress; j: the hit at j
            if hits is not None:
                starting = np.nonzero(keys < 0)[0]
                first_hit = (hits[members[starting]] >= 0).argmax(axis=1)
                keys[starting] = hits[members[starting], first_hit]
                mixes[starting] = mixing[members[starting], first_hit]
                sources[starting] = first_hit
            # A digit in progress needs only the new blocks (straight from this batch); one
            # that begins needs its window and the blocks before it (from the ring).
            unscaled: list = [None] * len(members)
            offsets = np.where(sources < 0, 0, -RING)
            for offset in (0, -RING):
                group = np.nonzero(offsets == offset)[0]
                if len(group):
                    blocks = np.arange(offset, count)[None, :]
                    values = _amplitudes(batch.tones(members[group], blocks, keys[group]),
                                         first[members[group]][:, None] + blocks, keys[group],
                                         mixes[group], np.ones((len(group), 2))).tolist()
                    for index, row_values in zip(group.tolist(), values, strict=True):
                        unscaled[index] = row_values
            rows = [None] * len(members) if hits is None else hits[members].tolist()
            for index, m in enumerate(members.tolist()):
                prepared = _Prepared(int(sources[index]), unscaled[index], int(offsets[index]))
                digits = self._track(int(slots[m]), int(first[m]), count, batch, m, rows[index],
                                     None if mixing is None else mixing[m], prepared)
                if digits:
                    found.setdefault(ids[m], []).extend(digits)

        batch.store()
        self._blocks[slots] = first + count

    def _track(self, slot: int, first: int, count: int, batch: _Batch, m: int,
               hits: list[int] | None, mixing: np.ndarray | None,
               prepared: _Prepared) -> list[Digit]:
        """The digit state machine over one stream's new blocks (member `m` of the batch;
        `first` numbers its first new block in the stream)."""
        digits = []
        key, misses, amp = int(self._key[slot]), int(self._misses[slot]), float(self._amp[slot])
        start, end = int(self._start[slot]), int(self._end[slot])
        amps: _Span | _Prepared | None = None
        if key >= 0:
            ref = self._ref[slot]
            amps = prepared.scaled(ref) if prepared.source == -1 else \
                _Span(batch, m, first, key, self._mixing[slot], ref)
        for j in range(count):
            block = first + j
            if amps is not None:
                low, high = amps[j]
                if low >= HOLD and high >= HOLD:
                    misses = 0
                    amp = min(1.0, (low + high) / 2)
                else:
                    if misses == 0:  # the tone stops in this block or the one before
                        partial = min(1.0, (low + high) / 2) if amp > 0.9 else 0.0
                        end = block * BLOCK - round((1 - amp - partial) * BLOCK)
                    misses += 1
                    if misses >= END_MISSES:
                        digits.append(_digit(key, start, end))
                        key, misses, amps = -1, 0, None
            if amps is None and hits is not None and hits[j] >= 0:
                key = hits[j]
                assert mixing is not None
                self._mixing[slot] = mixing[j]
                unit = np.ones(2)
                window = prepared.scaled(unit) if prepared.source == j else \
                    _Span(batch, m, first, key, mixing[j], unit)
                ref = np.mean([window[i] for i in range(j - WINDOW + 1, j + 1)], axis=0)
                self._ref[slot] = ref
                amps = prepared.scaled(ref) if prepared.source == j else \
                    _Span(batch, m, first, key, mixing[j], ref)
                # The tone may have begun before the window (an earlier window failed a test):
                # walk back over the full blocks still held, then into the partial one.
                begin = j - WINDOW + 1
                oldest = max(-first, 1 - RING)
                while begin > oldest and amps.fill(begin - 1) > 0.9:
                    begin -= 1
                inside = amps.fill(begin)
                before = amps.fill(begin - 1) if begin > -first and inside > 0.9 else 0.0
                start = max(0, (first + begin) * BLOCK + round((1 - inside - before) * BLOCK))
                misses, amp = 0, amps.fill(j)
        self._key[slot], self._misses[slot], self._amp[slot] = key, misses, amp
        self._start[slot], self._end[slot] = start, end
        return digits


class _Batch:
    """One `_run`'s new audio with each stream's ring of earlier µ-law blocks: correlations of
    any member's blocks, numbered from its first new block (negative: history), rotated to the
    stream's phase reference. Reads see the ring as it was before this batch; `store` adds the
    batch to it."""

    def __init__(self, ring: np.ndarray, slots: np.ndarray, first: np.ndarray,
                 codes: np.ndarray, tones: np.ndarray):
        self.ring, self.slots, self.first = ring, slots, first
        self.codes, self.new_tones = codes, tones
        self.count = codes.shape[1]

    def _raw(self, member: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """(members, blocks, 32) raw correlations (cos then -sin of the 16 frequencies),
        recomputed from the µ-law bytes; silence before sample 0 or beyond the ring."""
        absolute = self.first[member][:, None] + blocks
        new = self.codes[member[:, None], np.clip(blocks, 0, self.count - 1)]
        old = self.ring[self.slots[member][:, None], absolute % RING]
        known = (absolute >= 0) & (blocks >= -RING)
        codes = np.where((blocks >= 0)[..., None], new, np.where(known[..., None], old, _SILENCE))
        return ulaw_to_float32(codes) @ _BASIS

    def correlations(self, member: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """(members, blocks, 16) complex correlations, phases from the stream's sample 0."""
        raw = self._raw(member, blocks)
        phase = _ROTATIONS[(self.first[member][:, None] + blocks) % _PHASE_PERIOD]
        return (raw[..., :BANDS] + 1j * raw[..., BANDS:]) * phase

    def tones(self, member: np.ndarray, blocks: np.ndarray, key: np.ndarray) -> np.ndarray:
        """(members, blocks, 2) the correlations of each member's key's row and column."""
        bands = np.stack([key // 4, 4 + key % 4], axis=1)  # (members, 2)
        blocks = np.broadcast_to(blocks, (len(member), blocks.shape[-1]))
        if blocks.min() >= 0 and blocks.max() < self.count:
            raw = self.new_tones[member[:, None], blocks]  # (members, blocks, 16)
        else:
            raw = self._raw(member, blocks)[..., _TONE_COLUMNS]
        pick = np.arange(len(member))[:, None, None]
        step = np.arange(raw.shape[1])[None, :, None]
        cos = raw[pick, step, bands[:, None, :]]
        sin = raw[pick, step, 8 + bands[:, None, :]]
        absolute = self.first[member][:, None] + blocks
        phase = _ROTATIONS[(absolute % _PHASE_PERIOD)[..., None], bands[:, None, :]]
        return (cos + 1j * sin) * phase

    def store(self) -> None:
        if RING % self.count == 0 and not (self.first % self.count).any():
            # Every stream has been fed whole batches of this size: one row of the ring each.
            rows = self.ring.reshape(len(self.ring), RING // self.count, self.count * BLOCK)
            rows[self.slots, (self.first // self.count) % (RING // self.count)] = \
                self.codes.reshape(len(self.slots), -1)
            return
        keep = min(self.count, RING)
        where = (self.first[:, None] + np.arange(self.count - keep, self.count)[None, :]) % RING
        self.ring[self.slots[:, None], where] = self.codes[:, self.count - keep:]


def _amplitudes(pair: np.ndarray, absolute: np.ndarray, key: np.ndarray, mixing: np.ndarray,
                ref: np.ndarray) -> np.ndarray:
    """(members, blocks, 2): each member's digit's tone amplitudes, freed of each other's
    leakage, over the digit's reference level (a block the tone half covers carries half)."""
    row, column = key // 4, 4 + key % 4
    phases = _ROTATIONS[absolute % _PHASE_PERIOD]  # (members, blocks, 16)
    turn = (np.take_along_axis(phases, row[:, None, None], axis=2)[..., 0]
            / np.take_along_axis(phases, column[:, None, None], axis=2)[..., 0])
    low, high = _unmix(pair[..., 0], pair[..., 1], turn, mixing[:, 0:1], mixing[:, 1:2])
    return np.abs(np.stack([low, high], axis=-1)) / ref[:, None, :]


class _Prepared:
    """Amplitudes `_run` computed ahead for one stream, for the digit in progress (source -1:
    the batch's blocks) or for the hit at new block `source` (blocks -RING to the batch's end),
    read like a `_Span` once scaled by the digit's level."""

    def __init__(self, source: int, unscaled: list[list[float]], offset: int,
                 ref: tuple[float, float] = (1.0, 1.0)):
        self.source, self._unscaled, self._offset, self._ref = source, unscaled, offset, ref

    def scaled(self, ref: np.ndarray) -> _Prepared:
        return _Prepared(self.source, self._unscaled, self._offset,
                         (float(ref[0]), float(ref[1])))

    def __getitem__(self, block: int) -> list[float]:
        low, high = self._unscaled[block - self._offset]
        return [low / self._ref[0], high / self._ref[1]]

    def fill(self, block: int) -> float:
        low, high = self[block]
        return min(1.0, (low + high) / 2)


class _Span:
    """One member's digit amplitudes block by block (relative to its first new block),
    computed a few dozen blocks at a time as the state machine asks (a long feed may hold
    thousands of digits)."""

    SPAN = 64

    def __init__(self, batch: _Batch, member: int, first: int, key: int, mixing: np.ndarray,
                 ref: np.ndarray):
        self._batch, self._member, self._first = batch, np.array([member]), first
        self._key, self._mixing, self._ref = np.array([key]), mixing[None, :], ref[None, :]
        self._from, self._values = 0, []

    def __getitem__(self, block: int) -> list[float]:
        offset = block - self._from
        if not 0 <= offset < len(self._values):
            self._from = block - RING  # from a little before: a start walks back
            end = min(block + self.SPAN, self._batch.count)
            blocks = np.arange(self._from, max(end, block + 1))[None, :]
            pair = self._batch.tones(self._member, blocks, self._key)
            self._values = _amplitudes(pair, self._first + blocks, self._key, self._mixing,
                                       self._ref)[0].tolist()
            offset = block - self._from
        return self._values[offset]

    def fill(self, block: int) -> float:
        """How much of the block the digit's tones cover (0-1)."""
        low, high = self[block]
        return min(1.0, (low + high) / 2)


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


def _window_checks(window: np.ndarray, energy: np.ndarray, absolute: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each candidate window's strongest key, its leak factors and every test's outcome.
    `window` is (candidates, WINDOW, 16) correlations, `energy` each window's sample energy,
    `absolute` the stream's numbers of the window's blocks."""
    harmonics, window = window[..., 8:], window[..., :8]
    # Every tone's frequency (the mean phase advance from one block to the next) and its
    # coherent power there pick the strongest row and column.
    advance = _advance(window)
    steady = _coherent(window, advance)
    row = steady[:, :4].argmax(axis=1)
    column = 4 + steady[:, 4:].argmax(axis=1)
    pick = np.arange(len(window))

    # Those two, freed of each other's leakage (twice: the leak depends on their frequencies).
    phases = _ROTATIONS[absolute % _PHASE_PERIOD]  # (candidates, WINDOW, 16)
    turn = phases[pick, :, row] / phases[pick, :, column]
    mixed = window[pick, :, row], window[pick, :, column]
    measured = np.stack([advance[pick, row], advance[pick, column]], axis=1)
    for _ in range(2):
        hz = TONES[np.stack([row, column], axis=1)] + measured / (2 * np.pi * BLOCK / RATE)
        into_low, into_high = _leak_factors(hz[:, 0], hz[:, 1], row, column)
        pair = np.stack(_unmix(*mixed, turn, into_low[:, None], into_high[:, None]), axis=2)
        measured = _advance(pair)
    fitted = (pair * np.exp(-1j * measured[:, None, :] * _RAMP[None, :, None])).sum(axis=1)
    coherent = np.abs(fitted) ** 2
    low, high = coherent[:, 0], coherent[:, 1]
    incoherent = WINDOW * (np.abs(pair) ** 2).sum(axis=1)
    checks = {
        "frequency": (np.abs(measured[:, 0]) <= _TOLERANCE_RAD[row])
        & (np.abs(measured[:, 1]) <= _TOLERANCE_RAD[column]),
        "steady": np.all(coherent >= STEADINESS * incoherent, axis=1),
    }
    # Tone power over the window, as a mean square: coherent = (WINDOW * amplitude * BLOCK/2)².
    scale = 2.0 / (WINDOW * BLOCK) ** 2
    level_floor = dbm0_to_amplitude(MIN_LEVEL_DBM0) ** 2 / 2
    checks["level"] = (low * scale >= level_floor) & (high * scale >= level_floor)
    checks["twist"] = (low <= _NORMAL_TWIST * high) & (high <= _REVERSE_TWIST * low)
    checks["share"] = (low + high) * scale >= ENERGY_SHARE * energy / (WINDOW * BLOCK)
    # Dominance: what is left in every other tone channel once the two chosen tones' leakage
    # (known exactly from their unmixed series and measured frequencies) is taken out is a
    # competitor at whatever frequency it has (a voice's other harmonics, anywhere in the group).
    radians = 2 * np.pi / RATE
    residual = window.copy()
    for side, tone in enumerate((row, column)):
        gain = _leak((hz[:, side][:, None] - TONES[None, :]) * radians) \
            / _leak((hz[:, side] - TONES[tone]) * radians)[:, None]  # (candidates, 8)
        own = phases[pick, :, tone]  # (candidates, WINDOW)
        residual -= (pair[..., side] / own)[..., None] * gain[:, None, :] * phases[..., :8]
    competitor = _coherent(residual, _advance(residual))
    competitor[pick, row] = 0
    competitor[pick, column] = 0
    checks["dominance"] = (competitor[:, :4].max(axis=1) * _DOMINANCE <= low) \
        & (competitor[:, 4:].max(axis=1) * _DOMINANCE <= high)
    # Fill: every block carries the tone in phase with the window's fitted sinusoid (a block of
    # noise beside a short tone projects at random), at FILL of the strongest block's amplitude.
    along = (pair * np.exp(-1j * (measured[:, None, :] * _RAMP[None, :, None]
                                  + np.angle(fitted)[:, None, :]))).real
    checks["fill"] = np.all(along.min(axis=1) >= FILL * along.max(axis=1), axis=1)
    # Harmonics, at the multiple of the tone's measured frequency.
    checks["harmonics"] = np.ones(len(window), bool)
    for side, tone in enumerate((row, column)):
        turns = HARMONIC[tone][:, None] * measured[:, side][:, None] * _RAMP[None, :]
        harmonic = np.abs((harmonics[pick, :, tone] * np.exp(-1j * turns)).sum(axis=1)) ** 2
        checks["harmonics"] &= harmonic <= _HARMONIC_LIMIT * coherent[:, side]
    return row * 4 + column - 4, np.stack([into_low, into_high], axis=1), checks


def _advance(series: np.ndarray) -> np.ndarray:
    """(candidates, tones): the mean phase advance per block of each tone's series."""
    return np.angle((series[:, 1:] * series[:, :-1].conj()).sum(axis=1))


def _coherent(series: np.ndarray, advance: np.ndarray) -> np.ndarray:
    """|Σ_k series_k · e^(-j·advance·k)|²: the power of the sinusoid at the measured frequency."""
    ramp = np.exp(-1j * advance[:, None, :] * _RAMP[None, :, None])
    return np.abs((series * ramp).sum(axis=1)) ** 2


def _leak_factors(low_hz: np.ndarray, high_hz: np.ndarray, row: np.ndarray,
                  column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much of the high tone shows in the row's block correlation (relative to what it
    shows in its own), and the other way round."""
    radians = 2 * np.pi / RATE
    into_low = _leak((high_hz - TONES[row]) * radians) / _leak((high_hz - TONES[column]) * radians)
    into_high = _leak((low_hz - TONES[column]) * radians) / _leak((low_hz - TONES[row]) * radians)
    return into_low, into_high


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
