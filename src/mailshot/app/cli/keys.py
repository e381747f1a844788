"""``mailshot keys``: list, create, disable, enable and rotate API keys of the CRM or the ESP
(``--side``). An administrator's tool: it works on the databases directly, through the
same services as the admin API, so it works while the server is down.

A new key's token is printed once, with a warning; no other output carries a secret.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mailshot.app.cli.common import (
    console,
    database_error,
    err_console,
    fail,
    json_text,
    load_settings,
    shown,
)
from mailshot.core.access.schemas import (
    SHOWN_ONCE,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
)
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.errors import NOT_FOUND, AppError

app = typer.Typer(
    help="Manage API keys of the CRM or the ESP, directly in their databases.",
    no_args_is_help=True,
)


class Side(StrEnum):
    crm = "crm"
    esp = "esp"


SideOpt = Annotated[Side, typer.Option("--side", help="Whose keys: the CRM's or the ESP's.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
KeyArg = Annotated[str, typer.Argument(help="The key's id, or its prefix (mscrm_<id>_).")]


def _actor() -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"{who} (cli)"


def _update_provisioned(old_public_id: str, token: str) -> str | None:
    """If the rotated key is one the first run provisioned (kept in credentials.json),
    put the new token in its place; return which one, or None."""
    from pydantic import SecretStr

    from mailshot.core import credentials
    from mailshot.core.access.tokens import parse_token

    settings = load_settings()
    creds = credentials.load(settings.credentials_file)
    names = {
        "crm_integration_key": "bridge CRM key",
        "esp_integration_key": "bridge ESP key",
        "cli_key": "CLI key",
    }
    for field, label in names.items():
        held = getattr(creds, field)
        parsed = parse_token(held.get_secret_value()) if held is not None else None
        if parsed is not None and parsed.public_id == old_public_id:
            setattr(creds, field, SecretStr(token))
            credentials.save(settings.credentials_file, creds)
            return label
    return None


@contextmanager
def _session(side: Side) -> Iterator[Session]:
    settings = load_settings()
    url = settings.crm_db_url() if side is Side.crm else settings.esp_db_url()
    engine = make_unpooled_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    except OperationalError as exc:
        fail(database_error(side.value, url, exc))
    except AppError as exc:
        fail(exc)
    finally:
        engine.dispose()


class _Ops:
    """The side's key functions, behind one face."""

    def __init__(self, side: Side) -> None:
        self.side = side
        if side is Side.crm:
            from mailshot.crm.models import ApiKey, User
            from mailshot.crm.services import api_keys as crm

            self.key_model: Any = ApiKey
            self.user_model: Any = User
            self.store = crm.STORE
        else:
            from mailshot.esp.models import EspApiKey, EspUser
            from mailshot.esp.services import access as esp

            self.key_model = EspApiKey
            self.user_model = EspUser
            self.store = esp.STORE

    def key_id(self, session: Session, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        public_id = ref.strip().rstrip("_").split("_")[-1]
        found = session.scalar(
            select(self.key_model.id).where(self.key_model.public_id == public_id)
        )
        if found is None:
            raise AppError(NOT_FOUND, what="API key", id=ref)
        return int(found)

    def user_id(self, session: Session, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        found = session.scalar(
            select(self.user_model.id).where(self.user_model.email == ref.strip().lower())
        )
        if found is None:
            raise AppError(NOT_FOUND, what="user", id=ref)
        return int(found)


def _actor_for(side: Side) -> str | None:
    return _actor() if side is Side.crm else None  # the ESP keeps no audit log


def _dump(model: ApiKeyPublic) -> str:
    return json_text(model.model_dump(mode="json"))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _show_key(key: ApiKeyPublic, as_json: bool) -> None:
    if as_json:
        typer.echo(_dump(key))
        return
    console.print(
        f"Key {key.id} [bold]{shown(key.name)}[/] ({shown(key.prefix)}): {shown(key.state)}, "
        f"acts as {shown(key.user_email or str(key.user_id))}, "
        f"scopes {shown(', '.join(key.scopes) or '-')}."
    )


def _show_token(created: ApiKeyCreated, as_json: bool) -> None:
    if as_json:
        typer.echo(_dump(created))
    else:
        _show_key(created, False)
        console.print(f"Token: [bold]{shown(created.token)}[/]")
    err_console.print(f"[bold yellow]Warning:[/] {SHOWN_ONCE}")


@app.command("list")
def list_keys(side: SideOpt = Side.crm, as_json: JsonOpt = False) -> None:
    """List the keys: prefix, name, access-as user, scopes, validity, state and last use."""
    import mailshot.core.access.service as keyadmin

    ops = _Ops(side)
    with _session(side) as session:
        items: list[ApiKeyPublic] = []
        cursor: str | None = None
        while True:
            rows, cursor = keyadmin.page(ops.store, session, cursor=cursor, limit=500)
            items += [keyadmin.public(ops.store, k, u) for k, u in rows]
            if cursor is None:
                break
    if as_json:
        data = [k.model_dump(mode="json") for k in items]
        typer.echo(json_text(data))
        return
    table = Table(title=f"{side.value.upper()} API keys")
    for column in ("id", "prefix", "name", "user", "scopes", "valid from", "until", "state"):
        table.add_column(column)
    table.add_column("last used")
    for k in items:
        last = f"{_when(k.last_used_at)} {k.last_used_ip or ''}".strip()
        table.add_row(
            str(k.id),
            shown(k.prefix),
            shown(k.name),
            shown(k.user_email or str(k.user_id)),
            shown(", ".join(k.scopes)),
            _when(k.valid_from),
            _when(k.until),
            shown(k.state),
            shown(last),
        )
    console.print(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A name people recognise the key by.")],
    user: Annotated[str, typer.Option(help="The access-as user: id or email address.")],
    side: SideOpt = Side.crm,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="A scope (repeat for several; default: the user's role's)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    permitted_ip: Annotated[
        list[str] | None, typer.Option(help="An address or network allowed to use the key.")
    ] = None,
    valid_from: Annotated[
        datetime | None, typer.Option(help="Not valid before (UTC unless an offset is given).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Not valid from then on (UTC unless an offset).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a key; its token is printed once and cannot be shown again."""
    import mailshot.core.access.service as keyadmin

    ops = _Ops(side)
    with _session(side) as session:
        data = _validated(
            name=name,
            user_id=ops.user_id(session, user),
            description=description,
            scopes=scope or None,
            permitted_ips=permitted_ip or [],
            valid_from=_aware(valid_from),
            until=_aware(until),
        )
        key, owner, token = keyadmin.create(ops.store, session, data, actor=_actor_for(side))
        created = ApiKeyCreated(**keyadmin.public(ops.store, key, owner).model_dump(), token=token)
    _show_token(created, as_json)


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _validated(**fields: Any) -> ApiKeyCreate:
    from pydantic import ValidationError

    from mailshot.core.errors import _problem_from_pydantic, validation_error

    try:
        return ApiKeyCreate(**fields)
    except ValidationError as exc:
        raise validation_error([_problem_from_pydantic(dict(e)) for e in exc.errors()]) from exc


def _set_enabled(ref: str, side: Side, enabled: bool, as_json: bool) -> None:
    import mailshot.core.access.service as keyadmin

    ops = _Ops(side)
    with _session(side) as session:
        key, owner = keyadmin.set_enabled(
            ops.store, session, ops.key_id(session, ref), enabled=enabled, actor=_actor_for(side)
        )
        public = keyadmin.public(ops.store, key, owner)
    _show_key(public, as_json)


@app.command("disable")
def disable(key: KeyArg, side: SideOpt = Side.crm, as_json: JsonOpt = False) -> None:
    """Disable a key: its requests are refused with AUTH_KEY_DISABLED."""
    _set_enabled(key, side, False, as_json)


@app.command("enable")
def enable(key: KeyArg, side: SideOpt = Side.crm, as_json: JsonOpt = False) -> None:
    """Enable a disabled key again."""
    _set_enabled(key, side, True, as_json)


@app.command("rotate")
def rotate(
    key: KeyArg,
    side: SideOpt = Side.crm,
    overlap_hours: Annotated[
        float | None,
        typer.Option(
            help="The old key expires this many hours from now (default: it stays "
            "valid until disabled).",
            min=0,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A new key with the same settings and a new secret (printed once); the old key keeps
    working for the overlap, or until it is disabled."""
    import mailshot.core.access.service as keyadmin

    ops = _Ops(side)
    with _session(side) as session:
        new, owner, token, old = keyadmin.rotate(
            ops.store,
            session,
            ops.key_id(session, key),
            ApiKeyRotate(overlap_hours=overlap_hours),
            actor=_actor_for(side),
        )
        created = ApiKeyCreated(**keyadmin.public(ops.store, new, owner).model_dump(), token=token)
        old_shown = keyadmin.public(ops.store, old, owner)
    replaced = _update_provisioned(old.public_id, token)
    _show_token(created, as_json)
    if replaced and not as_json:
        console.print(
            f"The provisioned {replaced} in credentials.json now holds the new key; "
            "restart `mailshot serve` or `mailshot worker` to use it."
        )
    if not as_json:
        until = f"until {_when(old_shown.until)} UTC" if old_shown.until else "until you disable it"
        console.print(
            f"The old key {old_shown.id} ({shown(old_shown.prefix)}) keeps working {until}."
        )
