"""mailshot: a CRM's marketing side, an ESP and the bridge that synchronises between them.

``core`` is the plumbing every part uses, ``queue`` the lease queue, ``crm``, ``esp`` and
``bridge`` the three parts (they never import each other), ``app`` the programs that
combine them.
"""

__version__ = "0.1.0"
