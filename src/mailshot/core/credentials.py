"""The credentials provisioned on first run of the embedded default, kept in
``<data_dir>/credentials.json`` (mode 0600): the bridge's CRM and ESP keys and the CLI's
CRM key. Settings (``MAILSHOT_BRIDGE_CRM_KEY`` ...) take precedence over the file.
Secrets are never logged."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel, SecretStr

from mailshot.core.private_files import open_private, private_folder


class Credentials(BaseModel):
    crm_integration_key: SecretStr | None = None
    esp_integration_key: SecretStr | None = None
    cli_key: SecretStr | None = None
    #: The ESP key of ``mailshot send`` (the ESP's admin).
    esp_cli_key: SecretStr | None = None
    admin_email: str | None = None


def load(path: Path) -> Credentials:
    if not path.is_file():
        return Credentials()
    return Credentials.model_validate(orjson.loads(path.read_bytes()))


def save(path: Path, creds: Credentials) -> None:
    private_folder(path.parent)
    data = {
        k: (v.get_secret_value() if isinstance(v, SecretStr) else v)
        for k, v in creds.model_dump().items()
        if v is not None
    }
    tmp = path.with_suffix(".tmp")
    with open_private(tmp) as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
