"""``keysteward gateway rules``: checks the config file and lists its rules."""

import json
from pathlib import Path

from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()

CONFIG = """
systems:
  hub:
    upstream: https://api.example.com
    credential: {secret: hub-token, inject: header, name: X-Api-Key}
    rules:
      - {methods: [GET], path: "/contacts/{id}", resource: "contacts/{id}"}
      - {path: "/deals/**", resource: deals, action: write}
"""


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(home), "gateway", *args])
    return result.exit_code, result.output


def test_gateway_rules_json(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)

    code, output = _run(tmp_path, "rules", "--config", str(config), "--json")

    assert code == 0
    rows = json.loads(output)["rules"]
    assert [row["permission"] for row in rows] == [
        "hub:contacts/{id}:(by method)",
        "hub:deals:write",
    ]
    assert rows[0]["methods"] == ["GET"]
    assert rows[1]["methods"] == ["*"]
    assert rows[0]["credential"] == "hub-token (header)"


def test_gateway_rules_table_reads_home(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(CONFIG)

    code, output = _run(tmp_path, "rules")

    assert code == 0
    assert "2 rule(s)" in output


def test_gateway_rules_missing_config(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "rules")

    assert code == 3
    assert "not found" in output


def test_gateway_rules_invalid_config(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("systems: {hub: {upstream: ftp://x}}")

    code, output = _run(tmp_path, "rules")

    assert code == 3
    assert "systems.hub" in output
