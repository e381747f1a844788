"""The CRM's marketing side: people, organisations, lists, campaigns, compliance, templates,
mailshots, users and API keys, and the sync queue that the bridge leases work from.

Never imports :mod:`mailshot.esp` or :mod:`mailshot.bridge`.
"""
