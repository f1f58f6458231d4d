"""The database: engine and sessions, typed models, the registry of participants
and pairs, and the queries transcripts need.

Never imports the sources, delivery or the command line.
"""
