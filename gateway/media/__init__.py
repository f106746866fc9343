"""Audio on Media Streams: G.711 µ-law, DTMF tones and the DTMF receiver (numpy only).

`ulaw` converts between G.711 µ-law bytes and linear samples, `tones` is the keypad and a tone
generator (used by the simulator, the tests and the benchmarks), `dtmf` is the streaming receiver
that hears keys in a caller's inbound audio (one vectorised pass over many streams), and `cli` is
`gateway dtmf FILE`. The WebSocket server that feeds the receiver lives beside them (`server*`).
"""
