"""Known systems: the canonical name of each and its category."""

import re

from keysteward.systems.models import SystemCategory

CATEGORIES: dict[str, SystemCategory] = {
    "aws": SystemCategory.CLOUD,
    "gcp": SystemCategory.CLOUD,
    "azure": SystemCategory.CLOUD,
    "github": SystemCategory.CODE_HOSTING,
    "gitlab": SystemCategory.CODE_HOSTING,
    "openai": SystemCategory.AI_MODEL_API,
    "anthropic": SystemCategory.AI_MODEL_API,
    "slack": SystemCategory.CHAT,
    "okta": SystemCategory.IDENTITY,
    "google_workspace": SystemCategory.PRODUCTIVITY,
    "notion": SystemCategory.PRODUCTIVITY,
    "stripe": SystemCategory.PAYMENTS,
    "hubspot": SystemCategory.CRM,
    "salesforce": SystemCategory.CRM,
    "zapier": SystemCategory.WORKFLOW,
    "n8n": SystemCategory.WORKFLOW,
    "make": SystemCategory.WORKFLOW,
    "snowflake": SystemCategory.DATABASE,
    "postgresql": SystemCategory.DATABASE,
    "sendgrid": SystemCategory.EMAIL,
    "mailchimp": SystemCategory.EMAIL,
    "datadog": SystemCategory.ANALYTICS,
    "mixpanel": SystemCategory.ANALYTICS,
}
ALIASES = {
    "amazon web services": "aws",
    "amazon": "aws",
    "google cloud": "gcp",
    "google cloud platform": "gcp",
    "google workspace": "google_workspace",
    "g suite": "google_workspace",
    "gsuite": "google_workspace",
    "postgres": "postgresql",
    "open ai": "openai",
}


def canonical_system(name: str) -> str:
    """Return the canonical system name for a spelling such as "Google Workspace"."""
    spaced = re.sub(r"[^0-9a-z]+", " ", name.lower()).strip()
    if spaced in ALIASES:
        return ALIASES[spaced]
    return spaced.replace(" ", "_")


def category_of(system: str) -> SystemCategory:
    return CATEGORIES.get(system, SystemCategory.OTHER)
