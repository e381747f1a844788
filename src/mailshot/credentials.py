"""The credentials provisioned on first run of the embedded default, kept in
``<data_dir>/credentials.json`` (mode 0600): the bridge's CRM and ESP keys and the CLI's
CRM key. Settings (``MAILSHOT_BRIDGE_CRM_KEY`` ...) take precedence over the file.
Secrets are never logged."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from pydantic import BaseModel, SecretStr


class Credentials(BaseModel):
    crm_integration_key: SecretStr | None = None
    esp_integration_key: SecretStr | None = None
    cli_key: SecretStr | None = None
    admin_email: str | None = None


def load(path: Path) -> Credentials:
    if not path.is_file():
        return Credentials()
    return Credentials.model_validate(orjson.loads(path.read_bytes()))


def save(path: Path, creds: Credentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        k: (v.get_secret_value() if isinstance(v, SecretStr) else v)
        for k, v in creds.model_dump().items()
        if v is not None
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
