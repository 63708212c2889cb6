"""Lead files: decode, parse and normalise a CSV into leads, reporting every bad row.

Parsing is separate from storing: ``parse_leads`` turns bytes into ``Lead`` values and a list
of problems (line number and reason), and the repository writes the good leads in one
transaction. A file is never half-imported.

Encoding decision: the file is read as UTF-8 (a BOM is dropped). A file that is not valid UTF-8
is still imported, decoded as Windows-1252 (what spreadsheet programs on Windows write), or as
Latin-1 when it has bytes that Windows-1252 leaves undefined, and a warning says so: phone
numbers are ASCII in every one of these, so only names and custom fields could be misread, and
the warning names the encoding used. ``encoding=`` forces one and then decoding errors are fatal.

Columns: the phone column is found by its header (``phone``, ``phone_number``, ``number``,
``telephone``, ``msisdn``; any case, spaces or dashes for underscores); ``name`` and
``timezone`` (or ``tz``) are optional; every other column is kept per lead as a custom field.
Numbers are normalised to E.164 with the campaign's default region. Rows with the same number
are merged (later non-empty values win).
A lead's timezone is the CSV value if given, else the zone of its number when that is a single
zone; otherwise it is left unknown and the lead is reported as not dialable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import timezone as phone_timezone

from controller.dialer.policy import lead_zone
from controller.zones import unknown_zone

PHONE_HEADERS = ("phone", "phone_number", "number", "telephone", "msisdn")
NAME_HEADERS = ("name",)
TIMEZONE_HEADERS = ("timezone", "tz")
FALLBACK_ENCODINGS = ("cp1252", "latin-1")
_UNKNOWN_ZONE = "Etc/Unknown"


class LeadFileError(ValueError):
    """The file cannot be imported at all (no phone column, undecodable with a forced encoding)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str

    def render(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class Lead:
    phone: str
    name: str = ""
    timezone: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def merge(self, other: Lead) -> None:
        """Fold a later row for the same number into this lead: later non-empty values win."""
        self.name = other.name or self.name
        self.timezone = other.timezone or self.timezone
        self.custom.update({k: v for k, v in other.custom.items() if v})


@dataclass(slots=True)
class ParsedLeads:
    leads: list[Lead] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duplicates: int = 0
    empty_lines: int = 0
    encoding: str = "utf-8"

    @property
    def no_timezone(self) -> list[Lead]:
        return [lead for lead in self.leads if lead.timezone is None]


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str, list[str]]:
    """``(text, encoding used, warnings)``; see the module docstring for the fallback rule."""
    if encoding:
        try:
            return data.decode(encoding), encoding, []
        except (UnicodeDecodeError, LookupError) as error:
            raise LeadFileError(f"cannot decode as {encoding}: {error}") from None
    try:
        return data.decode("utf-8-sig"), "utf-8", []
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        first_bad = f"byte 0x{data[error.start]:02x} on line {line}"
    for fallback in FALLBACK_ENCODINGS:
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        warning = f"file is not UTF-8 ({first_bad}); read as {fallback}: check names"
        return text, fallback, [warning]
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def parse_number(raw: str, region: str) -> phonenumbers.PhoneNumber:
    """``raw`` read in ``region``; ValueError with a reason when it is not a valid number."""
    text = raw.strip()
    if not text:
        raise ValueError("phone number is empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number {text!r}: {error._msg}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number {text!r} (region {region})")
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_number(raw: str, region: str) -> str:
    """E.164 form of ``raw`` read in ``region``; ValueError with a reason when it is no number."""
    return e164(parse_number(raw, region))


def zone_of_number(number: phonenumbers.PhoneNumber) -> str | None:
    """The number's timezone when it has exactly one known zone, else None (unknown/ambiguous)."""
    zones = phone_timezone.time_zones_for_number(number)
    if len(zones) == 1 and zones[0] != _UNKNOWN_ZONE:
        return zones[0]
    return None


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    for index, title in enumerate(header):
        if title in names:
            return index
    return None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` per CSV record; the line is where the record starts."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as error:
        raise LeadFileError(f"line {start}: not readable as CSV: {error}") from None


def parse_leads(data: bytes, region: str, encoding: str | None = None) -> ParsedLeads:
    """Parse a lead CSV; bad rows land in ``problems`` and are skipped, good rows in ``leads``."""
    text, used, warnings = decode(data, encoding)
    out = ParsedLeads(warnings=warnings, encoding=used)
    records = _records(text)
    header_line, header = next(records, (1, []))
    # "Phone Number", "phone-number" and "phone_number" name the same column
    titles = [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in header]
    phone_col = _find_column(titles, PHONE_HEADERS)
    if phone_col is None:
        found = ", ".join(repr(t) for t in header) or "nothing"
        raise LeadFileError(
            f"line {header_line}: no phone column in the header (found {found}; "
            f"expected one of {', '.join(PHONE_HEADERS)})"
        )
    repeated = sorted({t for t in titles if titles.count(t) > 1 and t})
    if repeated:
        raise LeadFileError(f"line {header_line}: repeated column(s) {', '.join(repeated)}")
    name_col = _find_column(titles, NAME_HEADERS)
    tz_col = _find_column(titles, TIMEZONE_HEADERS)
    custom_cols = [(i, header[i].strip()) for i in range(len(header))
                   if i not in (phone_col, name_col, tz_col) and titles[i]]
    by_phone: dict[str, Lead] = {}
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            out.empty_lines += 1
            continue
        if len(cells) > len(header):
            out.problems.append(
                RowProblem(line, f"{len(cells)} fields but the header has {len(header)}")
            )
            continue
        cells = cells + [""] * (len(header) - len(cells))
        try:
            lead = _lead_from_row(cells, line, region, phone_col, name_col, tz_col, custom_cols)
        except ValueError as error:
            out.problems.append(RowProblem(line, str(error)))
            continue
        if lead.phone in by_phone:
            by_phone[lead.phone].merge(lead)
            out.duplicates += 1
        else:
            by_phone[lead.phone] = lead
    out.leads = list(by_phone.values())
    return out


def _lead_from_row(
    cells: list[str],
    line: int,
    region: str,
    phone_col: int,
    name_col: int | None,
    tz_col: int | None,
    custom_cols: list[tuple[int, str]],
) -> Lead:
    number = parse_number(cells[phone_col], region)
    zone_name = cells[tz_col].strip() if tz_col is not None else ""
    if zone_name and lead_zone(zone_name) is None:
        raise ValueError(unknown_zone(zone_name))
    return Lead(
        phone=e164(number),
        name=cells[name_col].strip() if name_col is not None else "",
        timezone=zone_name or zone_of_number(number),
        custom={title: cells[i].strip() for i, title in custom_cols},
        line=line,
    )


def parse_number_list(
    data: bytes, region: str | None, encoding: str | None = None
) -> tuple[list[str], list[RowProblem], list[str]]:
    """A DNC file: one number per line (first CSV field; a non-number first line is a header).

    Numbers without ``+CC`` need ``region``. Returns ``(E.164 numbers, problems, warnings)``.
    """
    text, _, warnings = decode(data, encoding)
    numbers: dict[str, None] = {}
    problems: list[RowProblem] = []
    for line, cells in _records(text):
        raw = cells[0].strip() if cells else ""
        if not raw:
            continue
        try:
            numbers[normalise_number(raw, region or "ZZ")] = None
        except ValueError as error:
            if line == 1 and not any(ch.isdigit() for ch in raw):
                continue  # a header such as "phone"
            problems.append(RowProblem(line, str(error)))
    return list(numbers), problems, warnings
