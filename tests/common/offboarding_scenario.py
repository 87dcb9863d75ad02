"""A small company in which one person leaves, for offboarding and review tests.

Lee Leaver owns the github system, the crm-sync service account and a deploy
key, holds a personal access token, has an API token, and read the vault
secret of a credential Pat Peer owns. That secret has the manual rotator, so
the rotation workflow takes its rotations. Everyone else stays.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.credentials.models import Credential, CredentialKind, Privilege
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import SecretMetadata, put_secret, read_secret

SECRET_NAME = "openai-prod-key"


@dataclass
class Scenario:
    leaver: str
    successor: str
    peer: str
    auditor: str
    deploy_key_id: int
    pat_id: int
    read_credential_id: int
    unrelated_id: int
    person_token: str
    account_token: str


def build_scenario(session: Session, keyring: KeyRing) -> Scenario:
    """Add the people, systems, accounts, credentials and one secret read."""
    manager = Person(name="Mia Manager", email="mia@example.com")
    leaver = Person(name="Lee Leaver", email="lee@example.com", manager=manager)
    successor = Person(name="Sam Successor", email="sam@example.com")
    peer = Person(name="Pat Peer", email="pat@example.com", manager=manager)
    auditor = Person(name="Ada Auditor", email="ada@example.com")
    github = System(name="github", owner=leaver)
    openai = System(name="openai", owner=peer)
    crm_sync = ServiceAccount(name="crm-sync", owner=leaver, purpose="CRM sync")
    ci_bot = ServiceAccount(name="ci-bot", owner=peer, purpose="CI")
    session.add_all([manager, leaver, successor, peer, auditor, github, openai])
    session.add_all([crm_sync, ci_bot])
    session.flush()

    deploy_key = _credential(
        "deploy-key", github, owner=leaver, creator=leaver, account=crm_sync
    )
    pat = _credential("lee-pat", github, owner=leaver, holder=leaver)
    pat.kind = CredentialKind.PERSONAL_ACCESS_TOKEN
    pat.privilege = Privilege.ADMIN
    read_credential = _credential("openai-prod", openai, owner=peer, account=ci_bot)
    read_credential.attributes = {"rotator": "manual"}
    unrelated = _credential("openai-dev", openai, owner=peer, account=ci_bot)
    webhook = _credential("crm-webhook", github, owner=peer, account=crm_sync)
    session.add_all([deploy_key, pat, read_credential, unrelated, webhook])
    session.flush()

    reader_role = Role(name="prod-secret-reader")
    reader_role.permissions.append(
        Permission(
            system="keysteward", resource=f"secrets/{SECRET_NAME}", action="read"
        )
    )
    session.add(reader_role)
    session.flush()
    session.add(
        RoleGrant(
            role_id=reader_role.id,
            principal_type=PrincipalType.PERSON,
            principal_id=leaver.id,
        )
    )
    session.flush()
    fake_value = ("sk-" + "a1B2" * 12).encode()
    put_secret(
        session,
        keyring,
        SECRET_NAME,
        fake_value,
        actor="test",
        metadata=SecretMetadata(credential_id=read_credential.id),
    )
    lee = Principal(PrincipalType.PERSON, leaver.id, leaver.email)
    assert read_secret(session, keyring, lee, SECRET_NAME).secret is not None

    person_token = issue_api_token(session, lee, actor="test")
    account_token = issue_api_token(
        session,
        Principal(PrincipalType.SERVICE_ACCOUNT, crm_sync.id, crm_sync.name),
        actor="test",
    )
    return Scenario(
        leaver=leaver.email,
        successor=successor.email,
        peer=peer.email,
        auditor=auditor.email,
        deploy_key_id=deploy_key.id,
        pat_id=pat.id,
        read_credential_id=read_credential.id,
        unrelated_id=unrelated.id,
        person_token=person_token.token,
        account_token=account_token.token,
    )


def _credential(
    name: str,
    system: System,
    *,
    owner: Person,
    creator: Person | None = None,
    holder: Person | None = None,
    account: ServiceAccount | None = None,
) -> Credential:
    return Credential(
        name=name,
        system=system,
        owner=owner,
        created_by=creator,
        holder_person=holder,
        holder_service_account=account,
        privilege=Privilege.WRITE,
        source="test",
        source_id=name,
    )
