"""Fake credentials for the discovery tests, built at run time.

No key literal sits in the repository: each value is assembled from a
format's prefix and seeded random characters, so secret scanners that read
this repository stay quiet and the tests stay reproducible.
"""

import random
import string
from collections.abc import Callable

import pytest

BASE62 = string.ascii_letters + string.digits
URLSAFE = BASE62 + "_-"
HEX = "0123456789abcdef"
UPPER32 = string.ascii_uppercase + "234567"


def _build_samples(rng: random.Random) -> dict[str, tuple[str, str]]:
    """Return rule id -> (text containing the secret, the secret the rule reports)."""

    def chars(alphabet: str, count: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(count))

    def uuid_like() -> str:
        return "-".join(chars(HEX, n) for n in (8, 4, 4, 4, 12))

    secrets: dict[str, str] = {
        "openai-project-key": "sk-"
        + "proj-"
        + chars(URLSAFE, 74)
        + "T3Blbk"
        + "FJ"
        + chars(URLSAFE, 74),
        "openai-service-account-key": "sk-" + "svcacct-" + chars(URLSAFE, 90),
        "openai-admin-key": "sk-" + "admin-" + chars(URLSAFE, 90),
        "openai-legacy-key": "sk-"
        + chars(BASE62, 20)
        + "T3Blbk"
        + "FJ"
        + chars(BASE62, 20),
        "anthropic-api-key": "sk-" + "ant-api03-" + chars(URLSAFE, 93) + "AA",
        "anthropic-admin-key": "sk-" + "ant-admin01-" + chars(URLSAFE, 93) + "AA",
        "huggingface-token": "hf" + "_" + chars(string.ascii_letters, 34),
        "groq-api-key": "gsk" + "_" + chars(BASE62, 52),
        "github-pat": "ghp" + "_" + chars(BASE62, 36),
        "github-fine-grained-pat": "github"
        + "_pat_"
        + chars(BASE62, 22)
        + "_"
        + chars(BASE62, 59),
        "github-oauth-token": "gho" + "_" + chars(BASE62, 36),
        "github-user-to-server-token": "ghu" + "_" + chars(BASE62, 36),
        "github-app-installation-token": "ghs" + "_" + chars(BASE62, 36),
        "github-refresh-token": "ghr" + "_" + chars(BASE62, 76),
        "gitlab-pat": "glpat" + "-" + chars(URLSAFE, 20),
        "npm-access-token": "npm" + "_" + chars(BASE62, 36),
        "pypi-upload-token": "pypi-" + "AgEIcHlwaS5vcmc" + chars(URLSAFE, 70),
        "google-oauth-client-secret": "GOCSPX" + "-" + chars(URLSAFE, 28),
        "google-oauth-access-token": "ya29" + "." + chars(URLSAFE, 60),
        "google-api-key": "AI" + "za" + chars(URLSAFE, 35),
        "digitalocean-token": "dop" + "_v1_" + chars(HEX, 64),
        "slack-bot-token": "xo"
        + "xb-"
        + chars("0123456789", 12)
        + "-"
        + chars("0123456789", 12)
        + "-"
        + chars(BASE62, 24),
        "slack-user-token": "xo"
        + "xp-"
        + "-".join(chars("0123456789", 12) for _ in range(3))
        + "-"
        + chars(HEX, 32),
        "slack-app-token": "xa"
        + "pp-1-"
        + chars(string.ascii_uppercase + "0123456789", 11)
        + "-"
        + chars("0123456789", 13)
        + "-"
        + chars(HEX, 64),
        "slack-webhook-url": "https://hooks.slack.com/services/T"
        + chars("ABCDEFGH0123", 9)
        + "/B"
        + chars("ABCDEFGH0123", 9)
        + "/"
        + chars(BASE62, 24),
        "discord-webhook-url": "https://discord.com/api/webhooks/"
        + chars("0123456789", 18)
        + "/"
        + chars(URLSAFE, 68),
        "teams-webhook-url": "https://contoso.webhook.office.com/webhookb2/"
        + uuid_like()
        + "@"
        + uuid_like()
        + "/IncomingWebhook/"
        + chars(HEX, 32)
        + "/"
        + uuid_like(),
        "telegram-bot-token": chars("0123456789", 10) + ":AA" + chars(URLSAFE, 33),
        "zapier-webhook-url": "https://hooks.zapier.com/hooks/catch/"
        + chars("0123456789", 7)
        + "/"
        + chars(string.ascii_lowercase + "0123456789", 6)
        + "/",
        "make-webhook-url": "https://hook.eu1.make.com/"
        + chars(string.ascii_lowercase + "0123456789", 32),
        "google-chat-webhook": "https://chat.googleapis.com/v1/spaces/AAAA"
        + chars(BASE62, 7)
        + "/messages?key=AI"
        + "za"
        + chars(URLSAFE, 35)
        + "&token="
        + chars(URLSAFE, 43),
        "hubspot-private-app-token": "pat" + "-na1-" + uuid_like(),
        "stripe-secret-key": "sk" + "_live_" + chars(BASE62, 99),
        "stripe-restricted-key": "rk" + "_live_" + chars(BASE62, 99),
        "sendgrid-api-key": "SG" + "." + chars(URLSAFE, 22) + "." + chars(URLSAFE, 43),
        "mailchimp-api-key": chars(HEX, 32) + "-us" + "14",
        "twilio-auth-token": chars(HEX, 32),
        "airtable-pat": "pat" + chars(BASE62, 14) + "." + chars(HEX, 64),
        "notion-integration-token": "ntn"
        + "_"
        + chars("0123456789", 11)
        + chars(BASE62, 35),
        "atlassian-api-token": "ATATT3" + chars(URLSAFE, 186),
        "linear-api-key": "lin" + "_api_" + chars(BASE62, 40),
        "shopify-token": "shpat" + "_" + chars(HEX, 32),
        "okta-api-token": "00" + chars(URLSAFE, 40),
        "keysteward-api-token": "ks" + "_api_" + chars(BASE62, 49),
        "azure-storage-account-key": chars(BASE62 + "+/", 86) + "==",
        "jwt": "ey"
        + "J"
        + chars(URLSAFE, 30)
        + ".ey"
        + "J"
        + chars(URLSAFE, 60)
        + "."
        + chars(URLSAFE, 43),
        "bearer-token": chars(BASE62, 40),
        "database-uri-password": chars(BASE62, 20),
        "generic-secret-assignment": chars(BASE62, 32),
    }
    texts = {rule: f'value = "{secret}"\n' for rule, secret in secrets.items()}
    texts["twilio-auth-token"] = f'TWILIO_AUTH_TOKEN="{secrets["twilio-auth-token"]}"\n'
    texts["okta-api-token"] = f"Authorization: SSWS {secrets['okta-api-token']}\n"
    texts["azure-storage-account-key"] = (
        "DefaultEndpointsProtocol=https;AccountName=acme;"
        f"AccountKey={secrets['azure-storage-account-key']};EndpointSuffix=core\n"
    )
    texts["bearer-token"] = f"Authorization: Bearer {secrets['bearer-token']}\n"
    texts["database-uri-password"] = (
        f"DATABASE_URL=postgresql://app:{secrets['database-uri-password']}"
        "@db.internal:5432/app\n"
    )
    texts["generic-secret-assignment"] = (
        f'client_secret = "{secrets["generic-secret-assignment"]}"\n'
    )
    key_id = "AK" + "IA" + chars(UPPER32, 16)
    aws_secret = chars(BASE62 + "/+", 40)
    texts["aws-access-key"] = (
        f"aws_access_key_id = {key_id}\naws_secret_access_key = {aws_secret}\n"
    )
    secrets["aws-access-key"] = aws_secret
    sid = "S" + "K" + chars(HEX, 32)
    twilio_secret = chars(BASE62, 32)
    texts["twilio-api-key"] = (
        f"TWILIO_API_KEY={sid}\nTWILIO_API_SECRET={twilio_secret}\n"
    )
    secrets["twilio-api-key"] = twilio_secret
    body = "\\n".join(chars(BASE62 + "+/", 64) for _ in range(8))
    pem = (
        "-----BEGIN "
        + "PRIVATE KEY-----\\n"
        + body
        + "\\n-----END "
        + "PRIVATE KEY-----\\n"
    )
    texts["gcp-service-account-key"] = (
        '{\n  "type": "service_account",\n  "private_key_id": "'
        + chars(HEX, 40)
        + '",\n  "private_key": "'
        + pem
        + '",\n  "client_email": "robot@acme-prod.iam.gserviceaccount.com"\n}\n'
    )
    secrets["gcp-service-account-key"] = pem
    block = "\n".join(chars(BASE62 + "+/", 64) for _ in range(6))
    private_key = (
        "-----BEGIN RSA "
        + "PRIVATE KEY-----\n"
        + block
        + "\n-----END RSA "
        + "PRIVATE KEY-----"
    )
    texts["private-key"] = private_key + "\n"
    secrets["private-key"] = private_key
    return {rule: (texts[rule], secrets[rule]) for rule in secrets}


@pytest.fixture(scope="session")
def samples() -> dict[str, tuple[str, str]]:
    """Rule id -> (file text containing one fake credential, that credential)."""
    return _build_samples(random.Random(20261204))


@pytest.fixture
def fake_token() -> Callable[[str, int], str]:
    """Return a builder of random base62 tokens with a given prefix and length."""
    rng = random.Random(7)

    def build(prefix: str, length: int) -> str:
        return prefix + "".join(rng.choice(BASE62) for _ in range(length))

    return build
