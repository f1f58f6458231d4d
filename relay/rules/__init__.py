"""Moderation rules: message view + context -> hits. Pure.

Never imports the store, delivery or the sources; a table in relay.toml decides
what a hit does.
"""
