"""Whether a principal may read a secret.

A principal may read secret NAME when the authorization policy grants it
``keysteward:secrets/NAME:read`` (``keysteward:secrets/*:read`` grants every
secret). Deny rules override grants, a token's role subset limits which
assignments count, inactive principals and access tokens whose API token was
revoked or expired are denied, and anything not granted is denied.
"""

import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keysteward.authz.engine import PolicyIndex, compile_policy
from keysteward.authz.models import PolicyState
from keysteward.authz.services import POLICY_STATE_ID, load_store_policy
from keysteward.tokens.principals import Principal, load_principal
from keysteward.tokens.services import api_token_in_force

SYSTEM = "keysteward"
REVOKED_TOKEN_REASON = "the API token behind the access token is revoked or expired"  # noqa: S105
READ_ACTION = "read"

# Compiled policies by database, policy version and change time. Both are
# read in the caller's transaction on every check, so a policy applied by
# another process takes effect at the next read. The change time separates
# two stores (or a restored one) that reached the same version number.
_compiled: dict[tuple[str, int, str], PolicyIndex] = {}
_compile_lock = threading.Lock()


@dataclass(frozen=True)
class AccessDecision:
    """An allow or deny, with the reason recorded in the read event."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def secret_resource(name: str) -> str:
    return f"secrets/{name}"


def secret_permission(name: str) -> str:
    return f"{SYSTEM}:{secret_resource(name)}:{READ_ACTION}"


def policy_index(session: Session) -> PolicyIndex:
    """Return the compiled policy of the session's database, as it is now."""
    state = session.get(PolicyState, POLICY_STATE_ID)
    version = 0 if state is None else state.version
    changed = "" if state is None else str(state.updated_at)
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    database = engine.url.render_as_string(hide_password=True)
    key = (database, version, changed)
    index = _compiled.get(key)
    if index is not None:
        return index
    with _compile_lock:
        index = _compiled.get(key)
        if index is None:
            index = compile_policy(load_store_policy(session), version=version)
            for stale in [k for k in _compiled if k[0] == database]:
                del _compiled[stale]
            _compiled[key] = index
    return index


def authorize_secret_read(
    session: Session, principal: Principal, name: str
) -> AccessDecision:
    """Decide through the authorization policy whether ``principal`` reads ``name``."""
    active = load_principal(session, principal.type, principal.id) is not None
    if principal.api_token_id is not None and not api_token_in_force(
        session, principal.api_token_id
    ):
        return AccessDecision(False, REVOKED_TOKEN_REASON)
    return decide_secret_read(policy_index(session), principal, name, active=active)


def decide_secret_read(
    index: PolicyIndex, principal: Principal, name: str, *, active: bool
) -> AccessDecision:
    """Decide a read of ``name`` from a compiled policy and the principal's status."""
    # Reasons name roles and rules, never the secret's value.
    if not active:
        return AccessDecision(False, "principal is disabled or departed")
    decision = index.check(
        principal.label, secret_permission(name), roles=principal.role_limit
    )
    if decision.grant is not None:
        return AccessDecision(
            True, f"granted by role {' > '.join(decision.grant.role_path)}"
        )
    if decision.deny is not None:
        target = decision.deny.target
        return AccessDecision(False, f"denied by a deny rule on {target}")
    if principal.role_limit is not None:
        return AccessDecision(False, "no role in the token's role subset grants read")
    return AccessDecision(False, "no role grants read")
