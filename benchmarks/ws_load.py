"""A lean Twilio-like WebSocket load: many streams, one 20 ms-paced frame each per tick.

The load must cost far less than the server it measures, on the same two cores: the handshake is
written by hand, and every frame is a pre-built, pre-masked WebSocket text frame written straight
to the socket (a fixed mask key: servers do not check that masks are random). One asyncio tick
every 20 ms writes the next frame of every stream.

    frame(text) -> bytes of one masked client text frame
    async open_stream(host, port, path, headers) -> (reader, writer)
    async read_frame(reader) -> (opcode, payload): one frame from the server
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct

MASK = b"\x11\x22\x33\x44"
TEXT, CLOSE = 0x1, 0x8


def frame(text: str | bytes, opcode: int = TEXT) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    mask = (MASK * (length // 4 + 1))[:length]
    masked = (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(length, "big")
    return header + MASK + masked


def close_frame(code: int = 1000) -> bytes:
    return frame(struct.pack("!H", code), CLOSE)


async def open_stream(host: str, port: int, path: str, headers: dict[str, str] | None = None,
                      timeout: float = 10.0):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             "User-Agent: Twilio.TmeWs/1.0"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    if b" 101 " not in response.split(b"\r\n", 1)[0]:
        writer.close()
        raise ConnectionError(response.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return opcode, await reader.readexactly(length)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, in seconds (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def group_pids(root: int) -> list[int]:
    """The process and its descendants (gunicorn's workers, gateway serve's children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out
