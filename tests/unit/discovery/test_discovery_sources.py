"""Sources: git history, mail exports, spreadsheets and the file walk."""

import subprocess
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

import openpyxl
import pytest

from keysteward.crypto.fingerprint import new_salt
from keysteward.discovery.rules import default_rules
from keysteward.discovery.scan import run_scan
from keysteward.errors import InvalidInputError


def git(repository: Path, *arguments: str, author: str = "Dana Dev") -> str:
    environment = {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": "dana@example.test",
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": "dana@example.test",
        "HOME": str(repository),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    result = subprocess.run(
        ["git", "-C", str(repository), *arguments],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return result.stdout.strip()


def scan(paths: list[Path], git_history: bool = False):
    return run_scan(paths, default_rules(), new_salt(), git=git_history)


def test_git_removed_key_found_with_commit(tmp_path: Path, samples: dict) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    git(repository, "init", "-q", "-b", "main")
    text, secret = samples["stripe-secret-key"]
    (repository / "settings.py").write_text("DEBUG = True\n" + text, encoding="utf-8")
    git(repository, "add", "settings.py")
    git(repository, "commit", "-q", "-m", "add settings", author="Erin Leaker")
    added = git(repository, "rev-parse", "HEAD")
    (repository / "settings.py").write_text("DEBUG = True\n", encoding="utf-8")
    git(repository, "commit", "-q", "-am", "remove key", author="Sam Fixer")

    plain = scan([repository])
    assert plain.findings == []

    history = scan([repository], git_history=True)
    assert len(history.findings) == 1
    finding = history.findings[0]
    assert finding.secret == secret
    assert finding.commit == added
    assert finding.author == "Erin Leaker <dana@example.test>"
    assert finding.path.endswith("repo/settings.py")
    assert finding.line == 2
    assert history.stats.blobs == 2


def test_git_needs_repository_root(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="--git"):
        scan([tmp_path], git_history=True)


def test_git_branch_history_found(tmp_path: Path, samples: dict) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    git(repository, "init", "-q", "-b", "main")
    (repository / "README").write_text("hello\n", encoding="utf-8")
    git(repository, "add", "README")
    git(repository, "commit", "-q", "-m", "start")
    git(repository, "checkout", "-q", "-b", "feature")
    text, secret = samples["slack-bot-token"]
    (repository / "bot.env").write_text(text, encoding="utf-8")
    git(repository, "add", "bot.env")
    git(repository, "commit", "-q", "-m", "bot")
    git(repository, "checkout", "-q", "main")
    result = scan([repository], git_history=True)
    assert [f.secret for f in result.findings] == [secret]


def _mail(samples: dict) -> tuple[EmailMessage, dict[str, str]]:
    message = EmailMessage()
    message["Subject"] = "Keys for the new integration"
    message["From"] = "ops@example.test"
    message["To"] = "dev@example.test"
    _, quoted_secret = samples["sendgrid-api-key"]
    message.set_content(
        "Hi,\n\nthe SendGrid key is " + quoted_secret + "\n" + "=" * 90 + "\n",
        cte="quoted-printable",
    )
    _, csv_secret = samples["github-pat"]
    message.add_attachment(
        f"name,token\nci,{csv_secret}\n".encode(),
        maintype="text",
        subtype="csv",
        filename="tokens.csv",
        cte="base64",
    )
    _, base64_secret = samples["anthropic-api-key"]
    message.add_attachment(
        f"ANTHROPIC_API_KEY={base64_secret}\n".encode(),
        maintype="application",
        subtype="octet-stream",
        filename="agent.env",
    )
    return message, {
        "qp": quoted_secret,
        "csv": csv_secret,
        "b64": base64_secret,
    }


def test_eml_base64_and_qp_parts(tmp_path: Path, samples: dict) -> None:
    message, secrets = _mail(samples)
    raw = message.as_bytes()
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    assert secrets["b64"].encode() not in raw
    path = tmp_path / "keys.eml"
    path.write_bytes(raw)
    findings = scan([path]).findings
    by_secret = {finding.secret: finding for finding in findings}
    assert set(by_secret) == set(secrets.values())
    assert (
        by_secret[secrets["csv"]].pointer
        == "message 1 part 3 (attachment tokens.csv)!B2"
    )
    assert (
        by_secret[secrets["b64"]].pointer == "message 1 part 4 (attachment agent.env)"
    )
    assert by_secret[secrets["qp"]].context == "mail-quoted-printable"


def test_mbox_every_message(tmp_path: Path, samples: dict) -> None:
    first, secrets = _mail(samples)
    second = EmailMessage()
    second["Subject"] = "token " + samples["gitlab-pat"][1]
    second["From"] = "a@example.test"
    second.set_content("nothing here\n")
    path = tmp_path / "export.mbox"
    path.write_bytes(
        b"From ops@example.test Fri Dec  4 10:00:00 2026\n"
        + first.as_bytes()
        + b"\nFrom a@example.test Fri Dec  4 11:00:00 2026\n"
        + second.as_bytes()
        + b"\n"
    )
    findings = scan([path]).findings
    pointers = {finding.pointer for finding in findings}
    assert len(findings) == 4
    assert "message 2 header Subject" in pointers


def test_xlsx_every_sheet_and_cell(tmp_path: Path, samples: dict) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Integrations"
    first.append(["system", "owner", "key"])
    first.append(["openai", "ana", samples["openai-project-key"][1]])
    hidden = workbook.create_sheet("Old keys")
    hidden.sheet_state = "hidden"
    hidden["D7"] = "notes: " + samples["hubspot-private-app-token"][1]
    path = tmp_path / "inventory.xlsx"
    buffer = BytesIO()
    workbook.save(buffer)
    path.write_bytes(buffer.getvalue())
    findings = scan([path]).findings
    located = {(f.pointer, f.line) for f in findings}
    assert located == {("Integrations!C2", 2), ("Old keys!D7", 7)}
    assert {f.context for f in findings} == {"xlsx"}


def test_csv_cells_pointed(tmp_path: Path, samples: dict) -> None:
    secret = samples["notion-integration-token"][1]
    path = tmp_path / "keys.csv"
    path.write_text(f'name,notes,token\nwiki,"two\nlines",{secret}\n', encoding="utf-8")
    findings = scan([path]).findings
    assert [(f.pointer, f.line) for f in findings] == [("C2", 2)]


def test_walk_skips_binary_and_git_dir(tmp_path: Path, samples: dict) -> None:
    text, _ = samples["npm-access-token"]
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(text, encoding="utf-8")
    (tmp_path / "image.bin").write_bytes(b"\x00\x01" * 50 + text.encode())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".npmrc").write_text(text, encoding="utf-8")
    result = scan([tmp_path])
    assert [f.path for f in result.findings] == [f"{tmp_path.as_posix()}/sub/.npmrc"]
    assert result.stats.skipped_binary == 1
    assert result.stats.files == 2


def test_missing_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        scan([tmp_path / "absent"])


def test_parallel_matches_serial(tmp_path: Path, samples: dict) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    git(repository, "init", "-q", "-b", "main")
    for index, rule in enumerate(
        ("github-pat", "jwt", "aws-access-key", "private-key")
    ):
        (repository / f"file_{index}.txt").write_text(
            samples[rule][0], encoding="utf-8"
        )
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "keys")
    (repository / "file_0.txt").write_text("removed\n", encoding="utf-8")
    git(repository, "commit", "-q", "-am", "remove")
    serial = run_scan([repository], default_rules(), b"s" * 32, git=True, jobs=1)
    parallel = run_scan([repository], default_rules(), b"s" * 32, git=True, jobs=2)

    def places(result):
        return sorted(
            (f.path, f.line, f.commit or "", f.fingerprint) for f in result.findings
        )

    assert places(parallel) == places(serial)
    assert len(serial.findings) == 7
    assert parallel.stats.blobs == serial.stats.blobs
    assert parallel.stats.files == serial.stats.files
