"""Odd values in exports: sentinels, time zones, Excel dates, BOM, quoting."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from keysteward.inventory.errors import ImportFileError
from keysteward.inventory.importers.base import detect_importer, load_file
from keysteward.inventory.parsing import (
    Where,
    detect_dayfirst,
    parse_datetime,
    read_csv_table,
    redact_url,
)

WHERE = Where("sheet.csv", "line 2")


@pytest.mark.parametrize(
    "value", ["", "N/A", "n/a", "no_information", "not_supported", "-", None]
)
def test_parse_datetime_empty_markers(value: object) -> None:
    assert parse_datetime(value, WHERE, "expires") is None


def test_parse_datetime_time_zones() -> None:
    expected = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    assert parse_datetime("2026-12-04T10:00:00+02:00", WHERE, "f") == expected
    assert parse_datetime("2026-12-04T08:00:00Z", WHERE, "f") == expected
    assert parse_datetime("2026-12-04 08:00", WHERE, "f") == expected
    micro = parse_datetime("2024-10-30T23:58:27.427722Z", WHERE, "f")
    assert micro is not None
    assert micro.microsecond == 427722


def test_parse_datetime_excel_serial() -> None:
    assert parse_datetime("46360", WHERE, "f") == datetime(2026, 12, 4, tzinfo=UTC)
    assert parse_datetime(46360.5, WHERE, "f") == datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_parse_datetime_invalid_names_field() -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_datetime("next tuesday-ish", WHERE, "last_rotated")
    message = str(caught.value)
    assert "sheet.csv: line 2" in message
    assert "'last_rotated'" in message
    assert "2026-12-04" in message


def test_dayfirst_detection() -> None:
    assert detect_dayfirst(["03/04/2026", "25/12/2025"]) is True
    assert detect_dayfirst(["03/04/2026", "12/25/2025"]) is False


def test_redact_url_strips_secrets() -> None:
    path_token = "B0" + "x9Y8z7W6v5U4t3S2"
    endpoint, embedded = redact_url(
        f"https://hooks.slack.com/services/T000/{path_token}"
    )
    assert endpoint == "https://hooks.slack.com/services/T000/***"
    assert embedded is True
    endpoint, embedded = redact_url(
        "http://user:pw-" + "x" * 6 + "@db.example.com:5432/app"
    )
    assert endpoint == "http://db.example.com:5432/app"
    assert embedded is True
    endpoint, embedded = redact_url("http://example.com/hook?token=abc")
    assert endpoint == "http://example.com/hook"
    assert embedded is True
    assert redact_url("https://example.com/a/b") == ("https://example.com/a/b", False)


def test_csv_bom_and_quoted_newlines() -> None:
    data = (
        "\ufeffid,name,system,notes\r\n"
        '1,"key, with comma",AWS,"two\nlines"\r\n'
        "2,plain,GitHub,\r\n"
    ).encode()
    table = read_csv_table(data, "sheet.csv")
    assert table.headers == ["id", "name", "system", "notes"]
    assert [row.line for row in table.rows] == [2, 4]
    assert table.rows[0].values["name"] == "key, with comma"
    assert table.rows[0].values["notes"] == "two\nlines"


def test_csv_too_many_cells() -> None:
    with pytest.raises(ImportFileError, match="line 3"):
        read_csv_table(b"a,b\n1,2\n1,2,3\n", "x.csv")


def test_sheet_odd_cells(tmp_path: Path) -> None:
    path = tmp_path / "creds.csv"
    path.write_text(
        "\ufeffRef,Credential Name,Service,Owner,Rotated on,Last used,Expires,"
        "Team,Secret\n"
        'K1,"deploy, prod",Google Workspace,Ann@Example.com,25/12/2025,never,46360,'
        "Ops,do-not-store\n"
        "K2,reader,amazon web services,,N/A,,2027-01-01T00:00:00+01:00,,\n",
        encoding="utf-8",
    )
    loaded = load_file(path)
    importer = detect_importer(loaded)
    assert importer.format == "sheet.credentials"
    batch = importer.parse(loaded)
    first, second = batch.credentials
    assert first.system == "google_workspace"
    assert first.values["name"] == "deploy, prod"
    assert first.values["last_rotated_at"] == datetime(2025, 12, 25, tzinfo=UTC)
    assert first.values["last_used_at"] is None
    assert first.attributes["usage_known"] is True
    assert first.values["expires_at"] == datetime(2026, 12, 4, tzinfo=UTC)
    assert first.owner is not None
    assert first.owner.email == "ann@example.com"
    assert first.attributes["Team"] == "Ops"
    assert "Secret" not in first.attributes
    assert "do-not-store" not in repr(batch)
    assert any("Secret" in warning for warning in batch.warnings)
    assert second.system == "aws"
    assert second.owner is None
    assert second.attributes["usage_known"] is False
    assert second.values["expires_at"] == datetime(2026, 12, 31, 23, tzinfo=UTC)


def test_sheet_xlsx(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(
        ["Credential ID", "Name", "System", "Owner email", "Last rotated", "Cost"]
    )
    sheet.append(
        ["X1", "billing", "Stripe", "bo@example.com", datetime(2026, 11, 1), 12.5]
    )
    sheet.append([None, None, None, None, None, None])
    sheet.append(["X2", "crm", "HubSpot", None, 46000, None])
    path = tmp_path / "creds.xlsx"
    workbook.save(path)
    loaded = load_file(path)
    batch = detect_importer(loaded).parse(loaded)
    first, second = batch.credentials
    assert first.source_id == "X1"
    assert first.values["last_rotated_at"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert first.attributes["Cost"] == 12.5
    assert first.attributes["source_line"] == 2
    assert second.attributes["source_line"] == 4
    assert second.values["last_rotated_at"] == datetime(2025, 12, 9, tzinfo=UTC)


def test_sheet_invalid_privilege(tmp_path: Path) -> None:
    path = tmp_path / "creds.csv"
    path.write_text("id,name,system,privilege\nA,a,AWS,godmode\n", encoding="utf-8")
    loaded = load_file(path)
    with pytest.raises(ImportFileError) as caught:
        detect_importer(loaded).parse(loaded)
    message = str(caught.value)
    assert "creds.csv: line 2" in message
    assert "'privilege'" in message
    assert "'godmode'" in message
    assert "read, write or admin" in message


def test_roster_synonyms(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text(
        "Full Name,Work Email,Employment Status,Termination Date,Reports To,"
        "GitHub Login,Department\n"
        "Ann Lee,ann@example.com,Active,,,ann-gh,Ops\n"
        "Bo Kim,BO@example.com,Terminated,15/08/2026,ann@example.com,,Sales\n",
        encoding="utf-8",
    )
    loaded = load_file(path)
    importer = detect_importer(loaded)
    assert importer.format == "people.roster"
    ann, bo = importer.parse(loaded).people
    assert ann.accounts == [("github", "ann-gh")]
    assert ann.attributes == {"Department": "Ops"}
    assert bo.email == "bo@example.com"
    assert bo.status == "departed"
    assert bo.departed_on is not None
    assert bo.departed_on.isoformat() == "2026-08-15"
    assert bo.manager == "ann@example.com"


def test_roster_invalid_status(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text("name,email,status\nAnn,ann@example.com,maybe\n", encoding="utf-8")
    loaded = load_file(path)
    with pytest.raises(ImportFileError, match="hr.csv: line 2: invalid field 'status'"):
        detect_importer(loaded).parse(loaded)


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{\n  "data": [\n    {"id": }\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(ImportFileError, match="keys.json: line 3"):
        load_file(path)


def test_roster_xlsx(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["First Name", "Last Name", "Email Address", "Last Day", "Slack ID"])
    sheet.append(["Ann", "Lee", "ann@example.com", None, "U0ANN"])
    sheet.append(["Bo", "Kim", "bo@example.com", datetime(2026, 1, 31), "U0BO"])
    path = tmp_path / "hr.xlsx"
    workbook.save(path)
    loaded = load_file(path)
    importer = detect_importer(loaded)
    assert importer.format == "people.roster"
    ann, bo = importer.parse(loaded).people
    assert ann.name == "Ann Lee"
    assert ann.status == "active"
    assert ann.accounts == [("slack", "U0ANN")]
    assert bo.status == "departed"
    assert bo.departed_on is not None
    assert bo.departed_on.isoformat() == "2026-01-31"


def test_redact_webhook_short_secret() -> None:
    endpoint, embedded = redact_url(
        "https://hooks.zapier.com/hooks/catch/123456/abc1def/", webhook=True
    )
    assert endpoint == "https://hooks.zapier.com/hooks/***/***/***/"
    assert embedded is True


def test_sheet_drops_secret_in_notes(tmp_path: Path) -> None:
    pasted = "ghp_" + "a1B2" * 9
    path = tmp_path / "creds.csv"
    path.write_text(
        "id,name,system,type,url,notes\n"
        f"W1,form hook,Zapier,webhook,https://hooks.zapier.com/hooks/catch/1/ab1/,"
        f"old value {pasted}\n",
        encoding="utf-8",
    )
    loaded = load_file(path)
    batch = detect_importer(loaded).parse(loaded)
    (record,) = batch.credentials
    assert "notes" not in record.attributes
    assert pasted not in repr(batch)
    assert any("'notes'" in warning for warning in batch.warnings)
    assert (
        record.attributes["endpoint"] == "https://hooks.zapier.com/hooks/***/***/***/"
    )
    assert record.attributes["embedded_secret"] is True
