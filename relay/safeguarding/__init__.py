"""Safeguarding: what happens after a hold, and what an inspector can be shown.

One module a concept: concerns (records, their history, concern@ mail, lead
alerts), escalation (the `escalate` action and overdue holds), sampling
(spot checks of unflagged mail), access_log (who read what), consent_checks
(minors, guardians' consent, mentors' background checks), guardian (copies
to a minor's guardian) and tick (what the daemon checks now and then).
Settings: [safeguarding] in relay.toml (relay.settings.SafeguardingSettings).
"""
