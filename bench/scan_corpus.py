"""Generate the labeled corpus that bench/scan_compare.py scans.

Fake credentials are built from format prefixes and seeded random characters
and planted into filler code, config, notebooks, spreadsheets, mail exports,
UTF-16 files, minified lines and a git history where keys are added and then
removed. Decoys (documentation examples, placeholders, hashes, ciphertext)
sit beside them and must not be reported. The ground truth is written to
truth.json next to the corpus.
"""

import base64
import codecs
import json
import random
import string
import subprocess
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

import openpyxl

BASE62 = string.ascii_letters + string.digits
URLSAFE = BASE62 + "_-"
HEX = "0123456789abcdef"
DIGITS = "0123456789"


@dataclass
class Planted:
    """One planted credential: where it is, what it is and how it is encoded."""

    file: str
    secret: str
    kind: str
    context: str
    line: int | None = None
    # Other values that identify the same credential, such as an AWS access
    # key id next to its secret. A tool that reports one of them found it.
    alternates: list[str] = field(default_factory=list)


class Generator:
    """Seeded generator of fake credentials, filler text and decoys."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chars(self, alphabet: str, count: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(count))

    def credential(self) -> tuple[str, str, str]:
        """Return (kind, secret, assignment name) for a random credential format."""
        c = self.chars
        kind = self.rng.choice(
            [
                "github",
                "github",
                "openai",
                "anthropic",
                "slack",
                "slack-webhook",
                "stripe",
                "google-api-key",
                "sendgrid",
                "hubspot",
                "jwt",
                "aws",
                "database-uri",
                "generic-password",
                "notion",
                "gitlab",
            ]
        )
        if kind == "github":
            return kind, "gh" + "p_" + c(BASE62, 36), "GITHUB_TOKEN"
        if kind == "openai":
            secret = "sk-" + "proj-" + c(URLSAFE, 74) + "T3Blbk" + "FJ" + c(URLSAFE, 74)
            return kind, secret, "OPENAI_API_KEY"
        if kind == "anthropic":
            return (
                kind,
                "sk-" + "ant-api03-" + c(URLSAFE, 93) + "AA",
                "ANTHROPIC_API_KEY",
            )
        if kind == "slack":
            secret = (
                "xo" + "xb-" + c(DIGITS, 12) + "-" + c(DIGITS, 13) + "-" + c(BASE62, 24)
            )
            return kind, secret, "SLACK_BOT_TOKEN"
        if kind == "slack-webhook":
            secret = (
                "https://hooks.slack.com/services/T"
                + c("ABCDEFGHJK0123456789", 10)
                + "/B"
                + c("ABCDEFGHJK0123456789", 10)
                + "/"
                + c(BASE62, 24)
            )
            return kind, secret, "SLACK_WEBHOOK_URL"
        if kind == "stripe":
            return kind, "sk" + "_live_" + c(BASE62, 99), "STRIPE_SECRET_KEY"
        if kind == "google-api-key":
            return kind, "AI" + "za" + c(URLSAFE, 35), "GOOGLE_API_KEY"
        if kind == "sendgrid":
            return (
                kind,
                "SG" + "." + c(URLSAFE, 22) + "." + c(URLSAFE, 43),
                "SENDGRID_KEY",
            )
        if kind == "hubspot":
            uuid = "-".join(c(HEX, n) for n in (8, 4, 4, 4, 12))
            return kind, "pat" + "-na1-" + uuid, "HUBSPOT_TOKEN"
        if kind == "jwt":
            return kind, self.jwt(), "SESSION_JWT"
        if kind == "aws":
            return kind, c(BASE62 + "/+", 40), "AWS"
        if kind == "database-uri":
            return kind, c(BASE62, 20), "DATABASE_URL"
        if kind == "notion":
            return kind, "ntn" + "_" + c(DIGITS, 11) + c(BASE62, 35), "NOTION_TOKEN"
        if kind == "gitlab":
            return kind, "glpat" + "-" + c(URLSAFE, 20), "GITLAB_TOKEN"
        return kind, c(BASE62 + "!#%", 18), "db_password"

    def jwt(self) -> str:
        """Return a structurally valid, randomly signed HS256 JSON Web Token."""

        def encode(part: dict) -> str:
            raw = json.dumps(part, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        header = encode({"alg": "HS256", "typ": "JWT"})
        payload = encode(
            {
                "sub": self.chars(DIGITS, 10),
                "iat": self.rng.randint(1_700_000_000, 1_800_000_000),
            }
        )
        return f"{header}.{payload}.{self.chars(URLSAFE, 43)}"

    def key_id_for(self, secret: str) -> str:
        """Return the AWS access key id paired with ``secret`` (stable per secret)."""
        pairing = random.Random(secret)
        return (
            "AK"
            + "IA"
            + "".join(
                pairing.choice(string.ascii_uppercase + "234567") for _ in range(16)
            )
        )

    def assignment_lines(self, kind: str, secret: str, name: str) -> list[str]:
        """Return config lines assigning ``secret``, which is on the last line."""
        if kind == "aws":
            key_id = self.key_id_for(secret)
            return [
                f"aws_access_key_id = {key_id}",
                f"aws_secret_access_key = {secret}",
            ]
        if kind == "database-uri":
            return [f"{name}=postgresql://app_user:{secret}@db.internal:5432/app"]
        return [f"{name}={secret}"]

    def filler_line(self) -> str:
        r = self.rng
        word = r.choice(
            [
                "user",
                "order",
                "token_count",
                "password_field",
                "item",
                "secret_name",
                "api_client",
                "cache_key",
                "session",
            ]
        )
        number = r.randint(0, 99999)
        templates = [
            f"    {word} = compute_{word}(request, limit={number})",
            f"    if {word} is None:",
            f"        raise ValueError('missing {word}: {number}')",
            f"def handle_{word}_{number}(payload):",
            f"    return {{'{word}': {word}, 'id': {number}}}",
            f"    log.info('processed %s', {word})",
            f"    # token refresh handled by the auth middleware ({number})",
            f"    password = form.get('password')  # read from the request {number}",
            f"    digest = hashlib.sha256({word}.encode()).hexdigest()",
            f"    {word}_id = '{self.chars(HEX, 8)}-{self.chars(HEX, 4)}'",
            "",
        ]
        return r.choice(templates)

    def filler(self, lines: int) -> list[str]:
        return [self.filler_line() for _ in range(lines)]

    def decoy(self) -> str:
        r = self.rng
        return r.choice(
            [
                "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE",
                "OPENAI_API_KEY=<your-" + "api-key>",
                "GITHUB_TOKEN=${GITHUB_" + "TOKEN}",
                "password: changeme",
                '"integrity": "sha512-'
                + base64.b64encode(r.randbytes(64)).decode()
                + '"',
                "commit = '" + self.chars(HEX, 40) + "'",
                "request_id = '"
                + "-".join(self.chars(HEX, n) for n in (8, 4, 4, 4, 12))
                + "'",
                "token = os.environ['API_TOKEN']",
                "stripe_key = 'sk" + "_live_" + "x" * 24 + "'",
            ]
        )


def make_planted(
    gen: Generator,
    file: str,
    secret: str,
    kind: str,
    context: str,
    line: int | None = None,
) -> Planted:
    alternates = [gen.key_id_for(secret)] if kind == "aws" else []
    return Planted(file, secret, kind, context, line, alternates)


def _write_text_with_secret(
    gen: Generator,
    root: Path,
    relative: str,
    lines_before: int,
    planted: list[Planted],
    context: str,
    wrap: str = "plain",
) -> None:
    kind, secret, name = gen.credential()
    lines = gen.filler(lines_before)
    lines.append(gen.decoy())
    assignment = gen.assignment_lines(kind, secret, name)
    if wrap == "python":
        assignment = [
            f'{line.split("=", 1)[0].strip()} = "{line.split("=", 1)[1].strip()}"'
            for line in assignment
        ]
    lines.extend(assignment)
    line_number = len(lines)
    lines.extend(gen.filler(lines_before))
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    planted.append(make_planted(gen, relative, secret, kind, context, line_number))


def plant_code_and_config(
    gen: Generator, root: Path, planted: list[Planted], count: int
) -> None:
    for index in range(count):
        suffix = gen.rng.choice([".py", ".py", ".js", ".yaml", ".ini", ".env", ".go"])
        folder = f"services/svc{index % 40:02d}"
        name = f"env_{index}/.env" if suffix == ".env" else f"module_{index}{suffix}"
        context = "code"
        if suffix == ".env":
            context = "env"
        elif suffix in (".yaml", ".ini"):
            context = "config"
        wrap = "python" if suffix == ".py" else "plain"
        _write_text_with_secret(
            gen,
            root,
            f"{folder}/{name}",
            gen.rng.randint(100, 400),
            planted,
            context,
            wrap,
        )


def plant_clean_filler(gen: Generator, root: Path, target_bytes: int) -> None:
    """Write files without credentials until the corpus reaches ``target_bytes``."""
    written = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    index = 0
    while written < target_bytes:
        lines = gen.filler(gen.rng.randint(400, 1200))
        lines.insert(gen.rng.randrange(len(lines)), gen.decoy())
        path = root / f"lib/pkg{index % 60:02d}/clean_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(lines) + "\n"
        path.write_text(text, encoding="utf-8")
        written += len(text)
        index += 1


def plant_encoded_files(
    gen: Generator, root: Path, planted: list[Planted], count: int
) -> None:
    """Notebooks, one-line JSON, URL queries, UTF-16, split literals and minified JS."""
    folder = root / "encoded"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        kind, secret, name = gen.credential()
        if kind in ("aws", "database-uri", "generic-password", "slack-webhook"):
            kind, secret, name = (
                "github",
                "gh" + "p_" + gen.chars(BASE62, 36),
                "GITHUB_TOKEN",
            )
        style = index % 6
        if style == 0:
            cell = {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": 1,
                "source": ["import os\n", f'client = Client(api_key="{secret}")\n'],
            }
            notebook = {
                "cells": [cell],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
            relative = f"encoded/analysis_{index}.ipynb"
            (root / relative).write_text(
                json.dumps(notebook, indent=1), encoding="utf-8"
            )
            planted.append(Planted(relative, secret, kind, "notebook-json-escaped"))
        elif style == 1:
            relative = f"encoded/event_{index}.json"
            payload = {
                "service": "svc",
                "operation": "Auth.register",
                "config": {name: secret},
            }
            (root / relative).write_text(json.dumps(payload), encoding="utf-8")
            planted.append(Planted(relative, secret, kind, "json-one-line"))
        elif style == 2:
            relative = f"encoded/geocode_{index}.sh"
            key = "AI" + "za" + gen.chars(URLSAFE, 35)
            line = (
                f'curl -s "https://maps.example.test/api?key={key}&q=berlin&lang=de"\n'
            )
            (root / relative).write_text(
                "\n".join(gen.filler(50)) + "\n" + line, encoding="utf-8"
            )
            planted.append(Planted(relative, key, "google-api-key", "url-query"))
        elif style == 3:
            relative = f"encoded/windows_{index}.txt"
            text = f"{name}={secret}\r\n"
            (root / relative).write_bytes(
                codecs.BOM_UTF16_LE + text.encode("utf-16-le")
            )
            planted.append(Planted(relative, secret, kind, "utf-16"))
        elif style == 4:
            relative = f"encoded/settings_{index}.py"
            half = len(secret) // 2
            text = f'API_KEY = (\n    "{secret[:half]}"\n    "{secret[half:]}"\n)\n'
            (root / relative).write_text(text, encoding="utf-8")
            planted.append(Planted(relative, secret, kind, "split-literal"))
        else:
            relative = f"encoded/bundle_{index}.min.js"
            chunk = "function a(b){return b*2};var c=[1,2,3].map(a);" * 3000
            text = chunk + f'var k="{secret}";' + chunk
            (root / relative).write_text(text, encoding="utf-8")
            planted.append(Planted(relative, secret, kind, "minified"))


def plant_sheets(
    gen: Generator, root: Path, planted: list[Planted], count: int
) -> None:
    folder = root / "sheets"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        kind, secret, _name = gen.credential()
        if kind in ("aws", "database-uri", "generic-password"):
            kind, secret = "stripe", "sk" + "_live_" + gen.chars(BASE62, 99)
        if index % 2:
            relative = f"sheets/keys_{index}.csv"
            rows = [["system", "owner", "notes", "value"]]
            rows += [
                [f"sys{n}", f"person{n}", "rotated", gen.chars(HEX, 8)]
                for n in range(30)
            ]
            rows.insert(gen.rng.randint(1, 30), [kind, "ops", "prod", secret])
            text = "\n".join(",".join(row) for row in rows) + "\n"
            (root / relative).write_text(text, encoding="utf-8")
            planted.append(Planted(relative, secret, kind, "csv-cell"))
        else:
            relative = f"sheets/inventory_{index}.xlsx"
            workbook = openpyxl.Workbook()
            sheet = workbook.active
            sheet.append(["system", "owner", "value"])
            for n in range(40):
                sheet.append([f"sys{n}", f"person{n}", gen.chars(HEX, 8)])
            second = workbook.create_sheet("archive")
            second.cell(row=gen.rng.randint(2, 20), column=4, value=secret)
            buffer = BytesIO()
            workbook.save(buffer)
            (root / relative).write_bytes(buffer.getvalue())
            planted.append(Planted(relative, secret, kind, "xlsx-cell"))


def _message(
    gen: Generator, index: int, planted_parts: list[tuple[str, str, str]]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"Integration handover {index}"
    message["From"] = "ops@example.test"
    message["To"] = "dev@example.test"
    kind, secret, name = gen.credential()
    body = "\n".join(gen.assignment_lines(kind, secret, name))
    message.set_content(
        "Hello,\n\nhere is the key for the integration:\n"
        + body
        + "\n"
        + "-" * 90
        + "\n",
        cte="quoted-printable",
    )
    planted_parts.append((kind, secret, "mail-quoted-printable"))
    kind2, secret2, name2 = gen.credential()
    lines = gen.assignment_lines(kind2, secret2, name2)
    message.add_attachment(
        ("\n".join(lines) + "\n").encode(),
        maintype="application",
        subtype="octet-stream",
        filename="service.env",
    )
    planted_parts.append((kind2, secret2, "mail-base64"))
    return message


def plant_mail(gen: Generator, root: Path, planted: list[Planted], count: int) -> None:
    folder = root / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    archive = b""
    for index in range(count):
        parts: list[tuple[str, str, str]] = []
        message = _message(gen, index, parts)
        if index % 2:
            relative = f"mail/handover_{index}.eml"
            (root / relative).write_bytes(message.as_bytes())
        else:
            relative = "mail/export.mbox"
            archive += (
                b"From ops@example.test Fri Dec  4 10:00:00 2026\n"
                + message.as_bytes()
                + b"\n"
            )
        for kind, secret, context in parts:
            planted.append(make_planted(gen, relative, secret, kind, context))
    (root / "mail/export.mbox").write_bytes(archive)


def plant_git_history(
    gen: Generator, root: Path, planted: list[Planted], count: int
) -> None:
    """Commit the corpus, then add keys in one commit and remove them in the next."""
    environment = {
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.test",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.test",
        "HOME": str(root),
        "PATH": "/usr/bin:/bin",
    }

    def git(*arguments: str) -> None:
        subprocess.run(
            ["git", "-C", str(root), *arguments],
            check=True,
            env=environment,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "corpus")
    folder = root / "deploy"
    folder.mkdir(exist_ok=True)
    for index in range(count):
        kind, secret, name = gen.credential()
        lines = gen.filler(30) + gen.assignment_lines(kind, secret, name)
        relative = f"deploy/job_{index}.sh"
        (root / relative).write_text("\n".join(lines) + "\n", encoding="utf-8")
        planted.append(make_planted(gen, relative, secret, kind, "git-history"))
    git("add", "-A")
    git("commit", "-q", "-m", "add deploy jobs")
    for index in range(count):
        relative = f"deploy/job_{index}.sh"
        (root / relative).write_text(
            "echo 'credentials come from the vault'\n", encoding="utf-8"
        )
    git("commit", "-q", "-am", "move credentials to the vault")


def generate(root: Path, seed: int = 1204, target_megabytes: int = 50) -> list[Planted]:
    """Write the corpus under ``root`` and return the planted credentials."""
    gen = Generator(seed)
    root.mkdir(parents=True, exist_ok=True)
    planted: list[Planted] = []
    plant_code_and_config(gen, root, planted, 400)
    plant_encoded_files(gen, root, planted, 180)
    plant_sheets(gen, root, planted, 60)
    plant_mail(gen, root, planted, 60)
    plant_clean_filler(gen, root, target_megabytes * 1_000_000)
    plant_git_history(gen, root, planted, 60)
    (root.parent / f"{root.name}-truth.json").write_text(
        json.dumps([asdict(item) for item in planted], indent=1), encoding="utf-8"
    )
    return planted
