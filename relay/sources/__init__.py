"""Where mail comes in: SMTP (aiosmtpd) and IMAP (aioimaplib), both into intake.accept()."""
