"""Rules about where a secret value lives and how it travels."""

from urllib.parse import urlsplit

from keysteward.audit.config import Thresholds
from keysteward.audit.context import AuditContext, CredentialView
from keysteward.audit.rules._base import Hit, raised, rule
from keysteward.findings.models import Severity

# At most this many other places are listed in a duplicate's evidence.
DUPLICATE_EVIDENCE_LIMIT = 10


@rule("duplicate_secret")
def duplicate_secret(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a secret value (same fingerprint) recorded more than once."""
    if credential.fingerprint is None:
        return None
    holders = context.fingerprint_holders.get(credential.fingerprint, [])
    others = [other for other in holders if other.id != credential.id]
    if not others:
        return None
    severity = Severity.MEDIUM
    if credential.is_admin:
        severity = raised(severity)
    return Hit(
        rule="duplicate_secret",
        severity=severity,
        title=f"The same secret is recorded in {len(others) + 1} places",
        recommendation=(
            "Give each system or automation its own credential, then revoke "
            "the shared one so one leak cannot open every place at once."
        ),
        evidence={
            "places": len(others) + 1,
            "others": [
                {"id": other.id, "name": other.name, "system": other.system_name}
                for other in others[:DUPLICATE_EVIDENCE_LIMIT]
            ],
        },
    )


@rule("plaintext_transport")
def plaintext_transport(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a URL or connection string that sends a secret unencrypted."""
    endpoint = credential.attributes.get("endpoint")
    if not isinstance(endpoint, str) or not credential.attributes.get(
        "embedded_secret"
    ):
        return None
    scheme = urlsplit(endpoint.strip()).scheme.lower()
    if scheme not in thresholds.plaintext_schemes:
        return None
    return Hit(
        rule="plaintext_transport",
        severity=Severity.HIGH,
        title=f"Secret sent over unencrypted {scheme}://",
        recommendation=(
            "Move the endpoint to TLS (https://, rediss://, ...) and rotate the "
            "secret, since it may have been read on the network."
        ),
        evidence={"endpoint": endpoint, "scheme": scheme},
    )


def _outside_location(stored_in: object, thresholds: Thresholds) -> str | None:
    """Return the ``stored_in`` value when it names a place outside any vault."""
    if not isinstance(stored_in, str) or not stored_in.strip():
        return None
    place = stored_in.strip().lower()
    kind = place.split(":", 1)[0].strip()
    if kind in thresholds.outside_vault_locations:
        return stored_in
    if place.endswith(".env") or "/.env" in place:
        return stored_in
    return None


@rule("found_outside_vault")
def found_outside_vault(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a secret value kept somewhere a vault does not protect.

    Critical when a source reports it exposed, high when discovery found it in
    files or commits, and medium when the inventory records it in code, a
    sheet, mail or similar. Admin credentials are one level higher.
    """
    attributes = credential.attributes
    discovered = attributes.get("discovered_in") or []
    stored_outside = _outside_location(attributes.get("stored_in"), thresholds)
    exposed = attributes.get("exposed")
    if not discovered and stored_outside is None and not exposed:
        return None
    if exposed:
        severity = Severity.CRITICAL
    elif discovered:
        severity = Severity.HIGH
    else:
        severity = Severity.MEDIUM
    if credential.is_admin:
        severity = raised(severity)
    places = [
        {key: place.get(key) for key in ("path", "line", "commit") if key in place}
        for place in discovered
        if isinstance(place, dict)
    ]
    return Hit(
        rule="found_outside_vault",
        severity=severity,
        title="Secret found outside the vault",
        recommendation=(
            "Rotate the secret, store the new value in the vault, and remove the "
            "old one from where it was found (including version history)."
        ),
        evidence={
            "discovered_in": places,
            "stored_in": stored_outside,
            "exposed": exposed or None,
        },
    )
