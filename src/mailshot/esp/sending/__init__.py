"""Sending Integrated Campaigns: the per-recipient message, compiled once per send."""
