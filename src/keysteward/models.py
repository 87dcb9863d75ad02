"""Import every model module so Base.metadata contains the whole schema."""

from keysteward import meta
from keysteward.authz import models as authz_models
from keysteward.credentials import models as credential_models
from keysteward.discovery import models as discovery_models
from keysteward.events import models as event_models
from keysteward.findings import models as finding_models
from keysteward.gateway import models as gateway_models
from keysteward.identities import models as identity_models
from keysteward.offboarding import models as offboarding_models
from keysteward.operators import models as operator_models
from keysteward.reviews import models as review_models
from keysteward.rotation import models as rotation_models
from keysteward.systems import models as system_models
from keysteward.tokens import models as token_models
from keysteward.vault import models as vault_models

__all__ = [
    "authz_models",
    "credential_models",
    "discovery_models",
    "event_models",
    "finding_models",
    "gateway_models",
    "identity_models",
    "meta",
    "offboarding_models",
    "operator_models",
    "review_models",
    "rotation_models",
    "system_models",
    "token_models",
    "vault_models",
]
