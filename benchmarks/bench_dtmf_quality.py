"""DTMF receiver quality: issue 10's item-3 sweep as a table, ours beside spandsp on the same audio.

Every trial is one of the 16 keys (cycled), random phases, after a random lead-in (so tones
fall anywhere in the receivers' blocks and in the 20 ms frames), through a G.711 µ-law round
trip, fed in 160-byte (20 ms) chunks. A row is a condition (a frequency error, a twist, a
duration, a level, an SNR, ...) with what Q.24 (AT&T column) asks: "accept" (every trial must
give exactly its key), "reject" (no digit at all), or "info". Wrong digits (a key that was not
pressed) are counted everywhere. spandsp is Debian's libspandsp2 (`dtmf_rx`, default settings)
through ctypes, run when the library is present; its digits are placed in time by the frame
after which `dtmf_rx_get` returned them.

Talk-off material is generated here: espeak-ng speech in a dozen voices and languages (random
speed and pitch), babble (3-6 voices at once), music-like chords (3-5 notes with harmonics,
vibrato and envelopes, notes anywhere from C4 to C7, DTMF's neighbourhood included) and noise
(white, pink, bursts), at -25 to -5 dBm0; false digits are counted per hour.

    apt-get install -y libspandsp2 espeak-ng      # optional: spandsp column; speech material
    .venv/bin/python -m benchmarks.bench_dtmf_quality [--quick] [--reps 20] [--talkoff-minutes 70]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import io
import math
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gateway.media.cli import resample
from gateway.media.dtmf import DtmfReceiver
from gateway.media.tones import KEYS, RATE, KeyTone, dbm0_to_amplitude, power_to_dbm0, white_noise
from gateway.media.ulaw import ULAW_TO_LINEAR, ulaw_encode

FRAME = 160
SLOT_MS = 400  # each trial's share of the timeline (lead-in, tone, silence)


# ---------------------------------------------------------------------------------------------
# The receivers


class Spandsp:
    """Debian's libspandsp2 dtmf_rx through ctypes (one channel, default parameters)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
        self.lib = ctypes.CDLL(name)
        self.lib.dtmf_rx_init.restype = ctypes.c_void_p
        self.lib.dtmf_rx_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.dtmf_rx.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16),
                                     ctypes.c_int]
        self.lib.dtmf_rx_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.lib.dtmf_rx_free.argtypes = [ctypes.c_void_p]

    def digits(self, data: bytes) -> list[tuple[str, float]]:
        """(digit, ms of the frame after which it was reported)."""
        state = self.lib.dtmf_rx_init(None, None, None)
        pcm = np.ascontiguousarray(ULAW_TO_LINEAR[np.frombuffer(data, np.uint8)])
        pointer = pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        buffer = ctypes.create_string_buffer(128)
        found = []
        step = ctypes.sizeof(ctypes.c_int16)
        for offset in range(0, len(pcm), FRAME):
            chunk = ctypes.cast(ctypes.addressof(pointer.contents) + offset * step,
                                ctypes.POINTER(ctypes.c_int16))
            self.lib.dtmf_rx(state, chunk, min(FRAME, len(pcm) - offset))
            count = self.lib.dtmf_rx_get(state, buffer, 127)
            for char in buffer.value[:count].decode():
                found.append((char, (offset + FRAME) / 8))
        self.lib.dtmf_rx_free(state)
        return found


def ours(data: bytes) -> list[tuple[str, float]]:
    """(digit, start ms) from our receiver, fed 20 ms at a time."""
    receiver = DtmfReceiver()
    digits = []
    for offset in range(0, len(data), FRAME):
        digits += receiver.feed(data[offset:offset + FRAME])
    return [(d.digit, float(d.start_ms)) for d in digits + receiver.flush()]


def spandsp_or_none() -> Spandsp | None:
    try:
        return Spandsp()
    except (OSError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------
# The sweep


@dataclass
class Condition:
    group: str
    label: str
    expect: str  # accept | reject | info
    build: Callable[[str, np.random.Generator], tuple[list[KeyTone | float], str]]
    noise_dbm0: float | None = None


@dataclass
class Score:
    trials: int = 0
    exact: int = 0  # exactly the expected digits
    silent: int = 0  # no digit at all
    wrong: int = 0  # digits that were not pressed
    extra: int = 0  # more digits than presses (the right key)
    times: list[float] = field(default_factory=list)

    def cell(self, expect: str) -> str:
        rate = (self.silent if expect == "reject" else self.exact) / max(1, self.trials)
        text = f"{100 * rate:5.1f} %"
        faults = []
        if self.wrong:
            faults.append(f"{self.wrong} wrong")
        if self.extra:
            faults.append(f"{self.extra} extra")
        return text + (f" ({', '.join(faults)})" if faults else "")


def phases(rng: np.random.Generator) -> dict[str, float]:
    return {"low_phase": rng.uniform(0, 2 * math.pi), "high_phase": rng.uniform(0, 2 * math.pi)}


def tone(key: str, rng: np.random.Generator, ms: float = 60, level: float = -10.0,
         twist: float = 0.0, low: float = 0.0, high: float = 0.0) -> KeyTone:
    return KeyTone.at_level(key, ms, level, twist, low_offset=low, high_offset=high,
                            **phases(rng))


def one(**kw: float) -> Callable[[str, np.random.Generator], tuple[list, str]]:
    return lambda key, rng: ([tone(key, rng, **kw)], key)


def conditions() -> list[Condition]:
    rows: list[Condition] = []
    for low, high, expect in [(0.015, 0, "accept"), (-0.015, 0, "accept"), (0, 0.015, "accept"),
                              (0, -0.015, "accept"), (0.015, 0.015, "accept"),
                              (-0.015, -0.015, "accept"), (0.015, -0.015, "accept"),
                              (-0.015, 0.015, "accept"),
                              (0.035, 0, "reject"), (-0.035, 0, "reject"), (0, 0.035, "reject"),
                              (0, -0.035, "reject"), (-0.04, 0, "reject")]:
        label = f"low {100 * low:+.1f} %, high {100 * high:+.1f} %"
        rows.append(Condition("frequency", label, expect, one(low=low, high=high)))
    for twist, expect in [(8.0, "accept"), (-4.0, "accept"), (10.0, "info"), (-6.0, "info"),
                          (12.0, "info"), (-8.0, "info")]:
        kind = "normal" if twist > 0 else "reverse"
        rows.append(Condition("twist", f"{abs(twist):.0f} dB {kind}", expect,
                              one(twist=twist, level=-6.0)))
    for ms, expect in [(20, "reject"), (23, "reject"), (26, "info"), (30, "info"), (35, "info"),
                       (40, "accept"), (50, "accept")]:
        rows.append(Condition("duration", f"{ms} ms", expect, one(ms=ms)))
        if ms in (23, 40):
            rows.append(Condition("duration", f"{ms} ms at 20 dB SNR", expect, one(ms=ms),
                                  noise_dbm0=-27.0))
    rows.append(Condition("interruption", "10 ms gap in a 100 ms press: one digit", "accept",
                          lambda key, rng: ([(t := tone(key, rng, ms=45)), 10.0, t], key)))
    rows.append(Condition("interruption", "40 ms pause between two presses: two", "accept",
                          lambda key, rng: ([tone(key, rng, ms=50), 40.0, tone(key, rng, ms=50)],
                                            key * 2)))
    rows.append(Condition("interruption", "40 ms on / 40 ms off, 4 presses", "accept",
                          lambda key, rng: ([tone(key, rng, ms=40), 40.0] * 4, key * 4)))
    for level, expect in [(0.0, "info"), (-3.0, "accept"), (-25.0, "accept"), (-30.0, "info"),
                          (-35.0, "info"), (-40.0, "info"), (-45.0, "info"), (-55.0, "reject")]:
        rows.append(Condition("level", f"{level:.0f} dBm0 per tone", expect, one(level=level)))
    for snr, expect in [(12.0, "accept"), (9.0, "accept"), (6.0, "accept"), (3.0, "info"),
                        (0.0, "info"), (-3.0, "info"), (-10.0, "info")]:
        # Two tones at -10 dBm0: -7 dBm0 in all; white noise over 0-4 kHz `snr` below that.
        rows.append(Condition("noise (50 ms tones)", f"SNR {snr:+.0f} dB", expect,
                              one(ms=50), noise_dbm0=-7.0 - snr))
    return rows


def render(condition: Condition, trials: int, rng: np.random.Generator,
           ) -> tuple[bytes, list[tuple[float, float, str]]]:
    """The condition's trials on one timeline: µ-law bytes and (slot start, end, keys) each."""
    pieces, slots = [], []
    at = 0
    for index in range(trials):
        key = KEYS[index % 16]
        parts, expected = condition.build(key, rng)
        lead = int(rng.integers(400, 1200))
        body = np.concatenate([np.zeros(lead)] + [
            p.samples() if isinstance(p, KeyTone) else np.zeros(round(p * 8)) for p in parts])
        slot = max(SLOT_MS * 8, len(body) + 1600)
        pieces.append(np.concatenate([body, np.zeros(slot - len(body))]))
        slots.append((at / 8, (at + slot) / 8, expected))
        at += slot
    signal = np.concatenate(pieces)
    if condition.noise_dbm0 is not None:
        signal = signal + white_noise(rng, len(signal), condition.noise_dbm0)
    return ulaw_encode(signal), slots


def score(found: list[tuple[str, float]], slots: list[tuple[float, float, str]]) -> Score:
    result = Score(trials=len(slots))
    starts = np.array([s[0] for s in slots])
    heard: list[str] = ["" for _ in slots]
    for digit, ms in found:
        heard[max(0, int(np.searchsorted(starts, ms, side="right")) - 1)] += digit
    for got, (_, _, expected) in zip(heard, slots, strict=True):
        result.exact += got == expected
        result.silent += got == ""
        result.wrong += sum(1 for d in got if d not in expected)
        result.extra += max(0, sum(1 for d in got if d in expected) - len(expected))
    return result


# ---------------------------------------------------------------------------------------------
# Talk-off material

SENTENCES = {
    "en": "Please hold the line while I check your account. The number you dialled was nine "
          "one one. Thank you for calling, have a wonderful afternoon. Seven hundred and "
          "seventy seven people were waiting in the rain at the station.",
    "en-us": "Hi, this is Mary from the office, call me back when you get a chance. We moved "
             "the meeting to Thursday at three thirty. Pound, star, zero, operator please.",
    "de": "Guten Tag, ich möchte gerne meinen Termin verschieben. Die Nummer ist acht acht "
          "sieben vier. Vielen Dank für Ihren Anruf und auf Wiederhören.",
    "fr": "Bonjour, je voudrais parler au service client s'il vous plaît. Mon numéro de "
          "dossier est quatre cent vingt et un. Merci beaucoup, bonne journée.",
    "es": "Buenas tardes, llamo para confirmar la reserva del sábado. El código es nueve "
          "cinco tres. Muchas gracias por su ayuda, hasta luego.",
    "it": "Pronto, vorrei prenotare un tavolo per quattro persone stasera alle otto. Grazie "
          "mille, arrivederci.",
    "pt": "Olá, estou ligando sobre a minha fatura do mês passado. O número do cliente é "
          "seis seis dois. Obrigado pela atenção.",
    "nl": "Goedemiddag, ik bel over de bestelling van vorige week. Het ordernummer is vijf "
          "nul acht. Dank u wel en tot ziens.",
    "sv": "Hej, jag ringer angående min beställning. Numret är tre sju noll. Tack så "
          "mycket och ha en trevlig dag.",
    "pl": "Dzień dobry, dzwonię w sprawie rachunku za telefon. Numer klienta to dwa dwa "
          "osiem. Dziękuję bardzo, do widzenia.",
    "ru": "Здравствуйте, я звоню по поводу моего заказа. Номер заказа девять один два. "
          "Спасибо большое, до свидания.",
    "hi": "नमस्ते, मैं अपने खाते के बारे में बात करना चाहता हूँ। धन्यवाद।",
    "ja": "もしもし、予約の確認をお願いします。ありがとうございました。",
    "cmn": "你好，我想查询一下我的账户余额。谢谢，再见。",
}
VARIANTS = ["", "+f1", "+f3", "+m3", "+m7", "+f5", "+klatt", "+croak", "+whisper"]


def speech_clip(rng: np.random.Generator) -> np.ndarray:
    """One espeak-ng utterance at 8 kHz: a random language, voice variant, speed and pitch."""
    language = str(rng.choice(list(SENTENCES)))
    voice = language + str(rng.choice(VARIANTS))
    words = SENTENCES[language].split(" ")
    start = int(rng.integers(0, max(1, len(words) - 8)))
    text = " ".join(words[start:start + int(rng.integers(8, 30))])
    command = ["espeak-ng", "--stdout", "-v", voice, "-s", str(int(rng.integers(120, 220))),
               "-p", str(int(rng.integers(10, 90))), text]
    wav = subprocess.run(command, capture_output=True, timeout=60, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), "<i2").astype(np.float64)
    return resample(pcm, rate)


def at_level(signal: np.ndarray, level_dbm0: float) -> np.ndarray:
    power = float(np.mean(signal ** 2)) or 1.0
    return signal * math.sqrt(10 ** ((level_dbm0 - power_to_dbm0(power)) / 10))


def speech(seconds: float, rng: np.random.Generator) -> np.ndarray:
    clips, total = [], 0
    while total < seconds * RATE:
        clip = at_level(speech_clip(rng), rng.uniform(-25, -8))
        pause = np.zeros(int(rng.integers(0, 4000)))
        clips += [clip, pause]
        total += len(clip) + len(pause)
    return np.concatenate(clips)


def babble(seconds: float, rng: np.random.Generator) -> np.ndarray:
    count = int(seconds * RATE)
    out = np.zeros(count)
    for _ in range(int(rng.integers(3, 7))):
        voice = speech(seconds, rng)[:count]
        shift = int(rng.integers(0, RATE))
        out[shift:] += voice[:count - shift] * rng.uniform(0.5, 1.0)
    return at_level(out, rng.uniform(-22, -8))


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    count = int(seconds * RATE)
    out = np.zeros(count)
    at = 0
    while at < count:
        length = int(rng.uniform(0.15, 0.7) * RATE)
        t = np.arange(length) / RATE
        envelope = np.minimum(1, t / 0.02) * np.exp(-t * rng.uniform(0.5, 4))
        chord = np.zeros(length)
        for _ in range(int(rng.integers(3, 6))):
            note = 261.63 * 2 ** (int(rng.integers(0, 37)) / 12)  # C4 .. C7
            vibrato = rng.uniform(0, 0.006) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
            tilt = rng.uniform(0.7, 2.0)
            for harmonic in range(1, 7):
                if harmonic * note < 3900:
                    chord += (np.sin(2 * np.pi * harmonic * note * t * (1 + vibrato)
                                     + rng.uniform(0, 2 * np.pi)) / harmonic ** tilt)
        out[at:at + length] += (chord * envelope)[:count - at]
        at += int(length * rng.uniform(0.5, 1.0))
    return at_level(out, rng.uniform(-20, -6))


def noise(seconds: float, rng: np.random.Generator) -> np.ndarray:
    count = int(seconds * RATE)
    white = white_noise(rng, count, rng.uniform(-30, -5))
    pink = np.cumsum(rng.normal(0, 1, count))
    pink -= np.convolve(pink, np.ones(64) / 64, mode="same")  # keep it from drifting
    bursts = white * (rng.uniform(0, 1, count // 800 + 1).repeat(800)[:count] > 0.7)
    return white + at_level(pink, rng.uniform(-30, -10)) + bursts


def talkoff(kind: str, seconds: float, rng: np.random.Generator) -> bytes:
    pieces, made = [], 0.0
    maker = {"speech": speech, "babble": babble, "music": music, "noise": noise}[kind]
    while made < seconds:
        piece = min(60.0, seconds - made)
        pieces.append(maker(piece, rng))
        made += piece
    signal = np.concatenate(pieces)
    peak = dbm0_to_amplitude(3.14)
    return ulaw_encode(np.clip(signal, -peak, peak))


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 trials per key, 4 min talk-off")
    parser.add_argument("--reps", type=int, default=20, help="trials per key per condition")
    parser.add_argument("--talkoff-minutes", type=float, default=72.0)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--only", default="", help="run only groups containing this text")
    args = parser.parse_args(argv)
    reps = 2 if args.quick else args.reps
    minutes = 4.0 if args.quick else args.talkoff_minutes
    rng = np.random.default_rng(args.seed)
    spandsp = spandsp_or_none()
    print(f"# DTMF quality: {16 * reps} trials per row; spandsp: "
          f"{'libspandsp (Debian)' if spandsp else 'not installed (apt-get install libspandsp2)'}")
    print("| group | condition | Q.24 | ours | spandsp |\n|---|---|---|---|---|")
    started = time.time()
    for condition in conditions():
        if args.only and args.only not in condition.group:
            continue
        data, slots = render(condition, 16 * reps, rng)
        mine = score(ours(data), slots).cell(condition.expect)
        theirs = score(spandsp.digits(data), slots).cell(condition.expect) if spandsp else "-"
        print(f"| {condition.group} | {condition.label} | {condition.expect} | {mine} | "
              f"{theirs} |", flush=True)
    if not args.only or "talk" in args.only:
        have_espeak = shutil.which("espeak-ng") is not None
        share = {"speech": 0.45, "babble": 0.2, "music": 0.2, "noise": 0.15}
        print("\n| talk-off material | minutes | ours: digits | spandsp: digits |\n"
              "|---|---|---|---|")
        for kind, part in share.items():
            if kind in ("speech", "babble") and not have_espeak:
                print(f"| {kind} | - | not run: espeak-ng is not installed | - |")
                continue
            data = talkoff(kind, minutes * 60 * part, rng)
            mine = ours(data)
            theirs = spandsp.digits(data) if spandsp else None
            print(f"| {kind} | {len(data) / RATE / 60:.1f} | {len(mine)} "
                  f"{''.join(d for d, _ in mine)[:30]} | "
                  f"{'-' if theirs is None else len(theirs)} |", flush=True)
    print(f"\n({time.time() - started:.0f} s; seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
