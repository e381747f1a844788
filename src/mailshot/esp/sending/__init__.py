"""Sending Integrated Campaigns: the per-recipient message, SMTP delivery and its outcomes."""
