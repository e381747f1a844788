"""ESP services: the only code that writes ESP data."""
