"""CRM API schemas (Pydantic), named ``XCreate`` / ``XUpdate`` / ``XPublic``."""
