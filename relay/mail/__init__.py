"""Mail as bytes and text: raw-input checks, parsing, the view rules read, addresses, SMTP replies.

Never imports the store, the rules or anything that sends mail.
"""
