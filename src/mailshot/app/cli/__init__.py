"""The ``mailshot`` command line: thin commands over library functions.

:mod:`mailshot.app.cli.main` assembles the Typer app; each module holds one group of commands
(``serving``: serve and worker; ``syncing``: sync and queue; ``admin``: migrate, provision,
demo, errors, version). The CLI is a composition root: it may import the CRM, the ESP and
the bridge, which never import each other.
"""
