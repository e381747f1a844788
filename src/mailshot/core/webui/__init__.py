"""Shared plumbing of the web pages of the CRM and the ESP: server-side sessions and their
cookies, throttled login and logout, CSRF protection, roles, page rendering (Jinja2
templates shipped in the package, a Content-Security-Policy on every page) and the static
CSS and JavaScript.

Each part builds its own pages (``mailshot.crm.ui``, ``mailshot.esp.ui``) on top of this
and calls its own service functions; nothing here knows about either part's data.
"""
