"""Mailshift's migration engine: copies mailboxes between IMAP servers, with no HTTP in it."""
