"""Running the relay: status, metrics, retention, the outbox as operators see it,
log set-up and sd_notify.

Never imports the sources.
"""
