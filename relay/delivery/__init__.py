"""Mail on its way out: the outbox (forwards, notices), the delivery worker,
transports (SMTP smarthost, Maildir) and bounces.

Never imports the sources or the command line.
"""
