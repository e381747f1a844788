"""Plumbing shared by every part: settings, clock, errors, logs, private files, the
database (``db``), HTTP building blocks (``web``), API keys (``access``) and the web
pages' shared machinery (``webui``). It imports no part."""
