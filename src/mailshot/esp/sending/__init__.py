"""Sending Integrated Campaigns: SMTP delivery, its outcomes and the global rate limit."""
