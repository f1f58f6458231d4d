"""Moderators' decisions about held mail, and how a held message is shown.

Never imports the sources or the command line.
"""
