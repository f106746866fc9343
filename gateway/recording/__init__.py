"""Recordings made for Plivo's `<Record>` (and transcriptions of conference recordings).

`params` turns Twilio's recording parameters into Plivo's (pure); `voicemail` handles Twilio's
Record action, recording status and transcription callbacks, and the jobs that start a session
recording and transcribe with the embedded engine.
"""
