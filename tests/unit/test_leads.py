"""Lead CSV parsing and import: bad rows, encodings, merging, idempotence, atomicity, 100k rows."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from controller.dialer.leads import (
    LeadFileError,
    parse_leads,
    parse_number_list,
)
from controller.dialer.policy import lead_zone
from controller.dialer.repository import GLOBAL_DNC, DialerRepository, DialerStoreError
from controller.dialer.settings import AgentGroup, CampaignSettings
from controller.store.base import ConstraintViolation, Database

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SETTINGS = CampaignSettings(
    trunk="trunk", caller_id="+12125550100", agents=AgentGroup(queue="sales")
)


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


def test_numbers_are_normalised_to_e164_with_the_default_region() -> None:
    parsed = parse_leads(csv_bytes("Phone,Name", "(212) 555-0101,Ada", "+44 20 7946 0958,Bob"),
                         "US")
    assert [lead.phone for lead in parsed.leads] == ["+12125550101", "+442079460958"]
    assert [lead.name for lead in parsed.leads] == ["Ada", "Bob"]
    assert parsed.problems == []


def test_bad_rows_are_reported_with_line_and_reason_and_skipped() -> None:
    parsed = parse_leads(
        csv_bytes("phone,name", "2125550101,ok", "hello,bad", "", "123,short",
                  "2125550102,too,many", ",empty phone", "2125550103,ok2"),
        "US",
    )
    assert [lead.phone for lead in parsed.leads] == ["+12125550101", "+12125550103"]
    assert [(p.line, p.reason.split(" ")[0]) for p in parsed.problems] == [
        (3, "not"), (5, "not"), (6, "3"), (7, "phone")
    ]
    assert "header has 2" in parsed.problems[2].reason
    assert parsed.empty_lines == 1


def test_duplicates_are_merged_later_non_empty_values_win() -> None:
    parsed = parse_leads(
        csv_bytes("phone,name,plan", "2125550101,Ada,", "+1 212 555 0101,,gold",
                  "212-555-0101,Ada L,"),
        "US",
    )
    assert len(parsed.leads) == 1
    assert parsed.duplicates == 2
    lead = parsed.leads[0]
    assert (lead.name, lead.custom) == ("Ada L", {"plan": "gold"})


def test_extra_columns_are_kept_as_custom_fields() -> None:
    parsed = parse_leads(csv_bytes("name,phone,Account,notes", "Ada,2125550101,A-1,vip"), "US")
    assert parsed.leads[0].custom == {"Account": "A-1", "notes": "vip"}


def test_missing_phone_column_is_a_clear_error() -> None:
    with pytest.raises(LeadFileError, match=r"line 1: no phone column.*'name', 'mobile'"):
        parse_leads(csv_bytes("name,mobile", "Ada,2125550101"), "US")


def test_header_names_are_matched_loosely() -> None:
    parsed = parse_leads(csv_bytes(" Phone Number ,TZ", "2125550101,Europe/Paris"), "US")
    assert (parsed.leads[0].phone, parsed.leads[0].timezone) == ("+12125550101", "Europe/Paris")


def test_unreadable_csv_is_an_error_naming_the_line() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    with pytest.raises(LeadFileError, match="line 3: not readable as CSV"):
        parse_leads(csv_bytes("phone,name", "2125550101,a", f"2125550102,{huge}"), "US")


def test_empty_file_has_no_phone_column() -> None:
    with pytest.raises(LeadFileError, match="no phone column"):
        parse_leads(b"", "US")


def test_utf8_bom_is_dropped() -> None:
    parsed = parse_leads("\ufeffphone,name\n2125550101,Zoë\n".encode(), "US")
    assert parsed.leads[0].name == "Zoë"
    assert parsed.warnings == []


def test_non_utf8_file_falls_back_to_cp1252_with_a_warning() -> None:
    parsed = parse_leads(csv_bytes("phone,name", "2125550101,José “Pepe”", encoding="cp1252"),
                         "US")
    assert parsed.leads[0].name == "José “Pepe”"
    assert parsed.encoding == "cp1252"
    assert "not UTF-8" in parsed.warnings[0] and "line 2" in parsed.warnings[0]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1() -> None:
    parsed = parse_leads(b"phone,name\n2125550101,A\x81B\n", "US")
    assert parsed.encoding == "latin-1"
    assert len(parsed.leads) == 1


def test_forced_encoding_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(LeadFileError, match="cannot decode as utf-8"):
        parse_leads(b"phone\n\xff\n", "US", encoding="utf-8")


def test_timezone_from_number_column_or_unknown() -> None:
    parsed = parse_leads(
        csv_bytes("phone,timezone", "2125550101,", "8005550199,", "8005550198,America/Chicago"),
        "US",
    )
    zones = {lead.phone: lead.timezone for lead in parsed.leads}
    assert zones == {"+12125550101": "America/New_York", "+18005550199": None,
                     "+18005550198": "America/Chicago"}
    assert [lead.phone for lead in parsed.no_timezone] == ["+18005550199"]


def test_unknown_timezone_name_is_a_bad_row() -> None:
    parsed = parse_leads(csv_bytes("phone,tz", "2125550101,Mars/Olympus"), "US")
    assert parsed.leads == []
    assert parsed.problems[0].reason == "unknown timezone 'Mars/Olympus'"


@pytest.mark.parametrize(("name", "shown"), [("A" * 300, "A" * 60 + "..."),
                                             ("America", "America")])
def test_a_zone_name_zoneinfo_cannot_open_is_an_unknown_timezone(name: str, shown: str) -> None:
    """zoneinfo raises OSError for these (file name too long, a folder): a bad row all the
    same, the name cut short in the reason."""
    assert lead_zone(name) is None
    parsed = parse_leads(csv_bytes("phone,tz", f"2125550101,{name}", "2125550102,UTC"), "US")
    assert [lead.phone for lead in parsed.leads] == ["+12125550102"]
    assert parsed.problems[0].reason == f"unknown timezone {shown!r}"


def test_number_list_skips_header_and_reports_bad_lines() -> None:
    numbers, problems, _ = parse_number_list(
        csv_bytes("phone", "+12125550101", "2125550102", "", "junk1"), "US"
    )
    assert numbers == ["+12125550101", "+12125550102"]
    assert [p.line for p in problems] == [5]


# --- import into the store -------------------------------------------------------------------


@pytest.fixture
async def repo(store: Database) -> AsyncIterator[DialerRepository]:
    repository = DialerRepository(store)
    await repository.create_campaign("demo", SETTINGS, NOW)
    await repository.change_state("demo", "start", NOW)
    yield repository


async def lead_rows(repo: DialerRepository) -> list[dict[str, object]]:
    return [dict(row) async for row in repo.export_rows("demo")]


async def test_reimport_changes_nothing(repo: DialerRepository) -> None:
    parsed = parse_leads(csv_bytes("phone,name,plan", "2125550101,Ada,gold", "2125550102,Bob,"),
                         "US")
    first = await repo.import_leads("demo", parsed.leads, NOW)
    before = await lead_rows(repo)
    again = await repo.import_leads("demo", parsed.leads, NOW.replace(hour=16))
    assert (first.new, again.new, again.updated, again.unchanged) == (2, 0, 0, 2)
    assert await lead_rows(repo) == before


async def test_reimport_merges_new_values_and_keeps_call_state(repo: DialerRepository) -> None:
    await repo.import_leads("demo", parse_leads(csv_bytes("phone,name", "2125550101,Ada"),
                                                "US").leads, NOW)
    [attempt] = await repo.claim("demo", 1, "w1", NOW)
    update = parse_leads(csv_bytes("phone,name,plan", "2125550101,,gold"), "US")
    counts = await repo.import_leads("demo", update.leads, NOW)
    [row] = await lead_rows(repo)
    assert counts.updated == 1
    assert (row["name"], json.loads(str(row["custom_json"]))) == ("Ada", {"plan": "gold"})
    assert (row["lead_state"], row["attempts"], row["attempt_id"]) == (
        "dialing", 1, attempt.attempt_id
    )


async def test_dnc_numbers_are_counted_at_import(repo: DialerRepository) -> None:
    await repo.add_dnc(GLOBAL_DNC, ["+12125550101"], NOW)
    await repo.add_dnc("demo", ["+12125550102"], NOW)
    parsed = parse_leads(csv_bytes("phone", "2125550101", "2125550102", "2125550103"), "US")
    counts = await repo.import_leads("demo", parsed.leads, NOW)
    assert counts.on_dnc == 2
    flags = {row["phone"]: row["on_dnc"] for row in await lead_rows(repo)}
    assert flags == {"+12125550101": 1, "+12125550102": 1, "+12125550103": 0}


async def test_failed_import_leaves_earlier_data_untouched(repo: DialerRepository) -> None:
    good = parse_leads(csv_bytes("phone,name", "2125550101,Ada", "2125550102,Bob"), "US")
    await repo.import_leads("demo", good.leads, NOW)
    before = await lead_rows(repo)
    with pytest.raises(LeadFileError):
        parse_leads(csv_bytes("name,mobile", "Eve,2125550103"), "US")
    broken = parse_leads(csv_bytes("phone,name", "2125550101,Mallory", "2125550104,Eve"), "US")
    broken.leads[1].phone = broken.leads[0].phone + "x"  # an insert that the store will refuse
    broken.leads.append(broken.leads[1])  # same key twice in one batch: primary key violation
    with pytest.raises(ConstraintViolation, match=r"(?i)unique|duplicate key"):
        await repo.import_leads("demo", broken.leads, NOW)
    assert await lead_rows(repo) == before


async def test_import_into_unknown_campaign_is_refused(repo: DialerRepository) -> None:
    with pytest.raises(DialerStoreError, match="no campaign named 'nope'"):
        await repo.import_leads("nope", [], NOW)


def big_csv(count: int) -> bytes:
    rows = [f"+1212{200 + i // 10000:03d}{i % 10000:04d},Lead {i},s{i % 7}" for i in range(count)]
    return ("phone,name,segment\n" + "\n".join(rows) + "\n").encode()


@pytest.mark.timeout(120)
async def test_100k_rows_import_completely_and_reimport_is_idempotent(
    repo: DialerRepository,
) -> None:
    parsed = parse_leads(big_csv(100_000), "US")
    assert (len(parsed.leads), parsed.problems, parsed.duplicates) == (100_000, [], 0)
    counts = await repo.import_leads("demo", parsed.leads, NOW)
    assert counts.new == 100_000
    again = await repo.import_leads("demo", parsed.leads, NOW)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 100_000)
    status = await repo.status("demo", NOW)
    assert status["leads"]["total"] == 100_000
    rows = [row async for row in repo.export_rows("demo")]
    assert rows[-1]["phone"] == "+12122099999" and rows[-1]["name"] == "Lead 99999"
