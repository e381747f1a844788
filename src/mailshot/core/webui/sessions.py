"""Page sessions kept in the part's ``web_sessions`` table (a cookie holds a random token,
the row its SHA-256, user, CSRF token and times), the login form's CSRF cookie, flash
messages and the cookies' flags. :func:`resolve` runs before a route's transaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import read_only

#: A session's last use is written at most this often (its idle limit is that coarse).
TOUCH_RESOLUTION = timedelta(seconds=60)
#: How long a message waits for the page that shows it.
FLASH_MAX_AGE_SECONDS = 600
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True)
class SessionConfig:
    """How one part keeps its page sessions (made by :func:`mailshot.core.webui.setup.install`)."""

    part_key: str
    session_model: Any
    user_model: Any
    secret: str
    lifetime: timedelta
    idle: timedelta
    force_secure: bool

    @property
    def session_cookie(self) -> str:
        return f"mailshot_{self.part_key}_session"

    @property
    def login_cookie(self) -> str:
        return f"mailshot_{self.part_key}_login"

    @property
    def flash_cookie(self) -> str:
        return f"mailshot_{self.part_key}_flash"


@dataclass(frozen=True)
class ActiveSession:
    """A valid session and its user, as read on this request."""

    id: int
    csrf_token: str
    user_id: int
    email: str
    name: str
    role: str


@dataclass
class _RequestState:
    """What this request learnt and will set: the session, cookies to write, messages."""

    resolved: bool = False
    session: ActiveSession | None = None
    cookies: dict[str, str | None] = field(default_factory=dict)
    flashes: list[list[str]] | None = None
    flash_cookie_seen: bool = False


def config(request: Request) -> SessionConfig:
    cfg: SessionConfig = request.app.state.web_sessions
    return cfg


def _state(request: Request) -> _RequestState:
    state: _RequestState | None = getattr(request.state, "web_session_state", None)
    if state is None:
        state = _RequestState()
        request.state.web_session_state = state
    return state


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sessions(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessions
    return factory


def resolve(request: Request) -> ActiveSession | None:
    """This request's valid session, or None (and the cookie of an ended one is removed)."""
    state = _state(request)
    if state.resolved:
        return state.session
    state.resolved = True
    cfg = config(request)
    token = request.cookies.get(cfg.session_cookie)
    if not token:
        return None
    if not _TOKEN_RE.fullmatch(token):
        state.cookies[cfg.session_cookie] = None
        return None
    model, users = cfg.session_model, cfg.user_model
    with read_only(_sessions(request)) as s:
        row = s.execute(
            select(model, users.email, users.name, users.role, users.enabled)
            .join(users, users.id == model.user_id)
            .where(model.token_hash == hash_token(token))
        ).first()
    if row is None:
        state.cookies[cfg.session_cookie] = None
        return None
    found, email, name, role, enabled = row
    now = utcnow()
    ended = (
        now >= found.expires_at
        or now - found.last_seen_at >= cfg.idle
        or not enabled
        or role == "integration"
    )
    if ended:
        with _sessions(request)() as s, s.begin():
            s.execute(delete(model).where(model.id == found.id))
        state.cookies[cfg.session_cookie] = None
        return None
    if now - found.last_seen_at >= TOUCH_RESOLUTION:
        with _sessions(request)() as s, s.begin():
            s.execute(update(model).where(model.id == found.id).values(last_seen_at=now))
    state.session = ActiveSession(
        id=found.id,
        csrf_token=found.csrf_token,
        user_id=found.user_id,
        email=email,
        name=name,
        role=role,
    )
    return state.session


def start(request: Request, *, user_id: int, email: str, name: str, role: str) -> ActiveSession:
    """Sign a user in: a new session row and cookie (a session this browser had before
    ends, so a token planted before sign-in is worthless after it). Ended rows are pruned."""
    cfg = config(request)
    state = _state(request)
    model = cfg.session_model
    token = secrets.token_urlsafe(32)
    now = utcnow()
    user_agent = request.headers.get("user-agent")
    row = model(
        token_hash=hash_token(token),
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + cfg.lifetime,
        client_ip=request.client.host[:64] if request.client else None,
        user_agent=user_agent[:255] if user_agent else None,
    )
    old = request.cookies.get(cfg.session_cookie)
    with _sessions(request)() as s, s.begin():
        s.execute(delete(model).where(model.expires_at <= now))
        if old:
            s.execute(delete(model).where(model.token_hash == hash_token(old)))
        s.add(row)
        s.flush()
        session_id = row.id
    state.resolved = True
    state.session = ActiveSession(
        id=session_id,
        csrf_token=row.csrf_token,
        user_id=user_id,
        email=email,
        name=name,
        role=role,
    )
    state.cookies[cfg.session_cookie] = token
    state.cookies[cfg.login_cookie] = None
    return state.session


def end(request: Request) -> None:
    """Sign this browser out: its session row goes, and its cookie."""
    cfg = config(request)
    state = _state(request)
    token = request.cookies.get(cfg.session_cookie)
    if token:
        model = cfg.session_model
        with _sessions(request)() as s, s.begin():
            s.execute(delete(model).where(model.token_hash == hash_token(token)))
    state.resolved = True
    state.session = None
    state.cookies[cfg.session_cookie] = None


# ---- CSRF --------------------------------------------------------------------------------
def _login_form_token(cfg: SessionConfig, nonce: str) -> str:
    mac = hmac.new(cfg.secret.encode(), f"login-form:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def ensure_csrf(request: Request) -> str:
    """The token this browser's forms carry: its session's, or before sign-in the login
    form's (bound to this browser's login cookie, which is made now if missing)."""
    session = resolve(request)
    if session is not None:
        return session.csrf_token
    cfg = config(request)
    state = _state(request)
    nonce = state.cookies.get(cfg.login_cookie) or request.cookies.get(cfg.login_cookie)
    if not nonce or not _TOKEN_RE.fullmatch(nonce):
        nonce = secrets.token_urlsafe(24)
        state.cookies[cfg.login_cookie] = nonce
    return _login_form_token(cfg, nonce)


def csrf_matches(request: Request, sent: object) -> bool:
    """Whether a posted form's token is this browser's (see :func:`ensure_csrf`)."""
    if not isinstance(sent, str) or not sent:
        return False
    session = resolve(request)
    if session is not None:
        expected = session.csrf_token
    else:
        cfg = config(request)
        nonce = request.cookies.get(cfg.login_cookie)
        if not nonce or not _TOKEN_RE.fullmatch(nonce):
            return False
        expected = _login_form_token(cfg, nonce)
    return hmac.compare_digest(expected.encode(), sent.encode())


# ---- messages for the next page ----------------------------------------------------------
def _flash_signer(cfg: SessionConfig) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(cfg.secret, salt=f"mailshot-{cfg.part_key}-flash")


def _flashes(request: Request) -> list[list[str]]:
    state = _state(request)
    if state.flashes is None:
        state.flashes = []
        cfg = config(request)
        raw = request.cookies.get(cfg.flash_cookie)
        if raw:
            state.flash_cookie_seen = True
            try:
                loaded = _flash_signer(cfg).loads(raw, max_age=FLASH_MAX_AGE_SECONDS)
            except BadSignature:
                loaded = []
            if isinstance(loaded, list):
                state.flashes = [
                    [str(kind), str(text)] for kind, text in loaded if isinstance(text, str)
                ][-5:]
    return state.flashes


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """Show ``text`` once on the next page this browser renders."""
    messages = _flashes(request)
    messages.append([kind, text])
    del messages[:-5]


def take_flashes(request: Request) -> list[list[str]]:
    """The messages waiting for this page (they are shown once)."""
    messages = list(_flashes(request))
    _flashes(request).clear()
    return messages


# ---- writing the cookies -----------------------------------------------------------------
def write_cookies(request: Request, response: Response) -> None:
    """Set or remove the cookies this request changed, on ``response``."""
    state: _RequestState | None = getattr(request.state, "web_session_state", None)
    if state is None:
        return
    cfg = config(request)
    changes = dict(state.cookies)
    if state.flashes:
        changes[cfg.flash_cookie] = _flash_signer(cfg).dumps(state.flashes)
    elif state.flash_cookie_seen:
        changes[cfg.flash_cookie] = None
    path = "/"
    secure = cfg.force_secure or request.url.scheme == "https"
    for name, value in changes.items():
        if value is None:
            response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="lax")
        else:
            max_age = int(cfg.lifetime.total_seconds()) if name == cfg.session_cookie else None
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=path,
                secure=secure,
                httponly=True,
                samesite="lax",
            )
