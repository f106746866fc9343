"""Benchmarks of the gateway (issues 2 and 4): measured side by side in one run, never asserted.

    bench_translate.py          parse + translate of the seed's examples (pure core, in process)
    bench_voice.py              /twilio/voice under gunicorn vs a minimal Flask proxy (proxy_app.py)
    bench_conference_events.py  Twilio conference event -> Plivo callback, SQLite vs Redis store
    run.sh                      all three, then a summary table (python -m benchmarks.summary)

Each benchmark prints a human-readable report and, with --json PATH, writes its figures there.
"""
