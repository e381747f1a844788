"""The email-marketing platform (ESP): contacts, Integrated Campaigns and their audiences,
suppressions, the integration page, users and API keys.

Never imports :mod:`mailshot.crm` or :mod:`mailshot.bridge`.
"""
