"""What a phone number tells us about where the caller is: country, region, and kind of line.

Uses ``phonenumbers``, a pure-data library (its metadata ships inside the package; nothing is
fetched), so this module stays within the core's no-I/O rule. Regions are not something ``phonenumbers``
knows: they come from prefix tables the operator can extend in ``regions:`` of the rules file; the French
geographic zones ship as defaults because that is where fsrouter's first users are.

    >>> describe("0145678901").region
    'ile-de-france'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

#: country (ISO 3166 alpha-2) -> {prefix -> region}. Prefixes are written as the number is dialled inside the
#: country (``01`` in France), or in E.164 with a leading ``+`` (``+331``). The longest matching prefix wins.
RegionTables = Mapping[str, Mapping[str, str]]

#: The five French geographic zones of the national numbering plan (ARCEP): 01 to 05.
DEFAULT_REGION_TABLES: RegionTables = MappingProxyType(
    {
        "FR": MappingProxyType(
            {
                "01": "ile-de-france",
                "02": "north-west",
                "03": "north-east",
                "04": "south-east",
                "05": "south-west",
            }
        )
    }
)

NUMBER_TYPES: Mapping[int, str] = MappingProxyType(
    {
        PhoneNumberType.FIXED_LINE: "fixed_line",
        PhoneNumberType.MOBILE: "mobile",
        PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
        PhoneNumberType.TOLL_FREE: "toll_free",
        PhoneNumberType.PREMIUM_RATE: "premium_rate",
        PhoneNumberType.SHARED_COST: "shared_cost",
        PhoneNumberType.VOIP: "voip",
        PhoneNumberType.PERSONAL_NUMBER: "personal_number",
        PhoneNumberType.PAGER: "pager",
        PhoneNumberType.UAN: "uan",
        PhoneNumberType.VOICEMAIL: "voicemail",
        PhoneNumberType.UNKNOWN: "unknown",
    }
)

#: Every ``number_type`` a rule may test.
NUMBER_TYPE_NAMES = frozenset(NUMBER_TYPES.values())

#: Every country code ``phonenumbers`` knows (ISO 3166 alpha-2, upper case).
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberInfo:
    """The facts routing can use about one number; empty strings when unknown (internal extensions, junk)."""

    country: str = ""
    region: str = ""
    number_type: str = "unknown"
    #: ``+33145678901``; lets VIP lists written in E.164 match a caller presented as ``0145678901``
    e164: str = ""


UNKNOWN_NUMBER = NumberInfo()


def describe(
    number: str, default_region: str = "FR", region_tables: RegionTables = DEFAULT_REGION_TABLES
) -> NumberInfo:
    """Country, region and line type of ``number``, read as dialled from ``default_region``.

    >>> describe("0612345678")
    NumberInfo(country='FR', region='', number_type='mobile', e164='+33612345678')
    """
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException:
        return UNKNOWN_NUMBER
    if not phonenumbers.is_possible_number(parsed):
        return UNKNOWN_NUMBER
    country = phonenumbers.region_code_for_number(parsed) or ""
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    national = "".join(
        ch for ch in phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL) if ch.isdigit()
    )
    return NumberInfo(
        country=country,
        region=region_of(national, e164, region_tables.get(country, {})),
        number_type=NUMBER_TYPES.get(phonenumbers.number_type(parsed), "unknown"),
        e164=e164,
    )


def region_of(national: str, e164: str, table: Mapping[str, str]) -> str:
    """The region of the longest prefix in ``table`` that starts the national or E.164 form ("" if none)."""
    best_prefix = ""
    for prefix in table:
        candidate = e164 if prefix.startswith("+") else national
        if candidate.startswith(prefix) and len(prefix) > len(best_prefix):
            best_prefix = prefix
    return table.get(best_prefix, "")


def merge_region_tables(base: RegionTables, extra: RegionTables) -> RegionTables:
    """The shipped tables with the operator's entries on top (an operator prefix overrides a shipped one)."""
    merged = {country: dict(table) for country, table in base.items()}
    for country, table in extra.items():
        merged.setdefault(country, {}).update(table)
    return MappingProxyType({country: MappingProxyType(table) for country, table in merged.items()})
