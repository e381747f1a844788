"""mailshot: a CRM's marketing side, an ESP and the bridge that synchronises between them.

The three parts live in :mod:`mailshot.crm`, :mod:`mailshot.esp` and :mod:`mailshot.bridge`;
they never import each other. Shared plumbing (settings, database, errors, API-key
primitives, clock) sits beside them in this package.
"""

__version__ = "0.1.0"
