"""The partner's copy of a stored message: scrub, rewrite, redact, sign. Pure.

Never imports the store: every function takes what it needs as arguments.
"""
