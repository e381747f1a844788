"""The programs that combine the parts: the embedded server, the ESP process,
provisioning, the demo data, runtime tuning and the ``mailshot`` command line (``cli``).
The only package that imports several parts."""
