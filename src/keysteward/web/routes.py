"""Dashboard pages: login, home, inventory, accounts, findings, discovery, events."""

import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import or_, select

from keysteward.audit.queries import list_findings
from keysteward.authz.services import load_store_policy
from keysteward.clock import as_utc
from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.credentials.story import credential_story, credential_summary
from keysteward.db import Store
from keysteward.dependencies import (
    SESSION_COOKIE,
    client_address,
    get_keyring,
    get_store,
    request_id_of,
)
from keysteward.discovery.models import DiscoveryHit
from keysteward.events.models import Event
from keysteward.events.services import record_event
from keysteward.identities.models import Person, PersonStatus, ServiceAccount
from keysteward.operators.errors import LoginError
from keysteward.operators.roles import Perm
from keysteward.operators.services import (
    SESSION_LIFETIME,
    authenticate_person,
    end_session,
    start_session,
)
from keysteward.systems.models import System
from keysteward.tokens.services import (
    clear_auth_failures,
    record_auth_failure,
    throttle_delay,
)
from keysteward.transactions import run_transaction
from keysteward.vault.keys import KeyRing
from keysteward.web.auth import LoginRequired, Viewer, check_csrf, page_permission
from keysteward.web.overview import build_overview

HERE = Path(__file__).parent
LOGIN_CSRF_COOKIE = "keysteward_login_csrf"
PAGE_SIZE = 50

templates = Jinja2Templates(directory=HERE / "templates")


def format_when(value: datetime | None) -> str:
    """Format a stored time for a page as ``YYYY-MM-DD HH:MM UTC``."""
    aware = as_utc(value)
    return aware.strftime("%Y-%m-%d %H:%M UTC") if aware is not None else ""


templates.env.filters["when"] = format_when
router = APIRouter(include_in_schema=False)

NAVIGATION = (
    ("/", "Home"),
    ("/inventory", "Inventory"),
    ("/accounts", "Service accounts and roles"),
    ("/findings", "Findings"),
    ("/discovery", "Discovery"),
    ("/rotations", "Rotations"),
    ("/reviews", "Access reviews"),
    ("/offboarding", "Offboarding"),
    ("/events", "Event log"),
)

StoreDep = Annotated[Store, Depends(get_store)]


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.update(
        viewer=viewer,
        navigation=NAVIGATION,
        current=request.url.path,
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """Render an HTTP error as a page, keeping the status code."""
    return render(
        request,
        "error.html",
        None,
        status_code=status_code,
        code=status_code,
        message=message,
    )


def _cookie_secure(request: Request) -> bool:
    settings = getattr(request.app.state, "settings", None)
    return bool(getattr(settings, "cookie_secure", True))


# Login and logout ------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str | None = None) -> HTMLResponse:
    # A login form has no session yet, so its CSRF token is a double-submit
    # cookie: the form field must equal the cookie set with the form.
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, login_csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
        path="/login",
    )
    return response


@router.post("/login")
def login(
    request: Request,
    store: StoreDep,
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)],
    totp: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """Check the password (and TOTP code) and start a server-side session."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        return RedirectResponse("/login?error=expired", status_code=303)
    source = client_address(request) or "unknown"
    with store.session() as session:
        if throttle_delay(session, source) is not None:
            return RedirectResponse("/login?error=throttled", status_code=303)

    def attempt(session: Any) -> str | None:
        try:
            person = authenticate_person(session, keyring, email, password, totp)
        except LoginError:
            return None
        started = start_session(session, person, source=source)
        clear_auth_failures(session, source)
        record_event(
            session,
            actor=f"person:{person.email}",
            action="operator.login",
            outcome="success",
            source_address=source,
            request_id=request_id_of(request),
        )
        return started.token

    token = run_transaction(store, attempt)
    if token is None:

        def failed(session: Any) -> None:
            record_auth_failure(session, source)
            record_event(
                session,
                actor="anonymous",
                action="operator.login",
                target_type="person",
                target_id=email[:200],
                outcome="failure",
                source_address=source,
                request_id=request_id_of(request),
            )

        run_transaction(store, failed)
        return RedirectResponse("/login?error=invalid", status_code=303)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    store: StoreDep,
    csrf_token: Annotated[str, Form(max_length=100)],
) -> Response:
    check_csrf(request, csrf_token)
    token = request.cookies.get(SESSION_COOKIE, "")
    run_transaction(store, lambda session: end_session(session, token))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# Pages -----------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.CREDENTIALS_READ))],
) -> HTMLResponse:
    with store.session() as session:
        overview = build_overview(session)
        extras = home_extras(session)
    return render(request, "home.html", viewer, overview=overview, **extras)


def home_extras(session: Any) -> dict[str, Any]:
    """Return the home page's rotation and review figures."""
    from keysteward.web.reviews import review_progress
    from keysteward.web.rotations import rotations_due

    return {
        "rotations_due": rotations_due(session),
        "review_progress": review_progress(session),
    }


@router.get("/inventory", response_class=HTMLResponse)
def inventory(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.CREDENTIALS_READ))],
    q: Annotated[str | None, Query(max_length=200)] = None,
    system: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    query = select(Credential)
    if q:
        pattern = f"%{q}%"
        query = query.where(
            or_(Credential.name.ilike(pattern), Credential.source_id.ilike(pattern))
        )
    if system:
        query = query.join(System, Credential.system_id == System.id).where(
            System.name == system
        )
    if status:
        query = query.where(Credential.status == status)
    query = query.order_by(Credential.name, Credential.id)
    with store.session() as session:
        rows = session.scalars(
            query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
        ).all()
        credentials = [credential_summary(row) for row in rows[:PAGE_SIZE]]
        systems = list(session.scalars(select(System.name).order_by(System.name)))
    return render(
        request,
        "inventory.html",
        viewer,
        credentials=credentials,
        systems=systems,
        statuses=[str(s) for s in CredentialStatus],
        q=q or "",
        system=system or "",
        status=status or "",
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


@router.get("/inventory/{credential_id}", response_class=HTMLResponse)
def credential_page(
    request: Request,
    credential_id: int,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.CREDENTIALS_READ))],
) -> HTMLResponse:
    from keysteward.web.rotations import rotations_of_credential

    with store.session() as session:
        story = credential_story(session, credential_id)
        rotations = rotations_of_credential(session, credential_id)
    return render(request, "credential.html", viewer, story=story, rotations=rotations)


@router.get("/accounts", response_class=HTMLResponse)
def accounts(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.SERVICE_ACCOUNTS_READ))],
) -> HTMLResponse:
    with store.session() as session:
        rows = session.scalars(select(ServiceAccount).order_by(ServiceAccount.name))
        service_accounts = [
            {
                "name": account.name,
                "purpose": account.purpose,
                "owner": account.owner.email if account.owner else None,
                "status": account.status,
            }
            for account in rows
        ]
        policy = load_store_policy(session)
    roles_of: dict[str, list[str]] = {}
    for assignment in policy.assignments:
        roles_of.setdefault(assignment.principal, []).append(assignment.role)
    return render(
        request,
        "accounts.html",
        viewer,
        service_accounts=service_accounts,
        roles=sorted(policy.roles.values(), key=lambda spec: spec.name),
        roles_of=roles_of,
    )


@router.get("/findings", response_class=HTMLResponse)
def findings(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.FINDINGS_READ))],
    severity: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    severity = severity or None
    with store.session() as session:
        ranked = list_findings(session, severity=severity)
    return render(
        request,
        "findings.html",
        viewer,
        findings=ranked[:500],
        total=len(ranked),
        severity=severity or "",
    )


@router.get("/discovery", response_class=HTMLResponse)
def discovery(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.DISCOVERY_READ))],
) -> HTMLResponse:
    with store.session() as session:
        hits = session.scalars(
            select(DiscoveryHit).order_by(DiscoveryHit.last_seen_at.desc()).limit(500)
        ).all()
    return render(request, "discovery.html", viewer, hits=hits)


@router.get("/offboarding", response_class=HTMLResponse)
def offboarding(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.OFFBOARDING_READ))],
) -> HTMLResponse:
    with store.session() as session:
        departed = session.scalars(
            select(Person)
            .where(Person.status == PersonStatus.DEPARTED)
            .order_by(Person.departed_on.desc(), Person.email)
            .limit(200)
        ).all()
        still_owned = {
            person.id: len(
                session.scalars(
                    select(Credential.id).where(
                        Credential.owner_id == person.id,
                        Credential.status == CredentialStatus.ACTIVE,
                    )
                ).all()
            )
            for person in departed
        }
        runs = session.scalars(
            select(Event)
            .where(Event.action.like("offboard%"))
            .order_by(Event.sequence.desc())
            .limit(100)
        ).all()
    return render(
        request,
        "offboarding.html",
        viewer,
        departed=departed,
        still_owned=still_owned,
        events=runs,
    )


@router.get("/events", response_class=HTMLResponse)
def events(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.EVENTS_READ))],
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    query = select(Event)
    if actor:
        query = query.where(Event.actor == actor)
    if action:
        query = query.where(Event.action == action)
    with store.session() as session:
        rows = session.scalars(
            query.order_by(Event.sequence.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        ).all()
    return render(
        request,
        "events.html",
        viewer,
        events=rows[:PAGE_SIZE],
        actor=actor or "",
        action=action or "",
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


def install_dashboard(app: FastAPI) -> None:
    """Mount the pages, the stylesheet and the redirect to /login."""
    from keysteward.web.reviews import router as reviews_router
    from keysteward.web.rotations import router as rotations_router

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(reviews_router)
    app.include_router(rotations_router)

    @app.exception_handler(LoginRequired)
    async def to_login(_request: Request, _exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)
