"""CRM services: the only code that writes CRM data. Plain functions over a Session."""
