"""The bridge: worker processes/threads that lease sync work from the CRM and write the
campaign and its audience to the ESP, both over HTTP. It imports neither part."""
