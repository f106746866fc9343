"""The Twilio-facing side: webhooks in (signature checked in one place), REST calls out."""
