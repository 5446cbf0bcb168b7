"""Timestamp format of the CRM API and a tolerant parser for filter values."""

import re
from datetime import UTC, date, datetime, time, timedelta

# The API writes every timestamp in UTC with six fraction digits and an explicit offset,
# for example "2019-02-01 07:41:49.529970+00:00". format_timestamp() produces the same
# text with the faster datetime.isoformat().
API_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"

# Dates, or date and time with a space or "T" separator, optional seconds, an optional
# fraction of 1 to 6 digits and an optional "Z" or numeric offset.
_TIMESTAMP_PATTERN = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def format_timestamp(moment: datetime) -> str:
    """Format a datetime in the API's timestamp format, converted to UTC.

    A naive datetime is taken to be UTC already.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(" ", "microseconds")


def parse_timestamp(text: str) -> datetime | None:
    """Parse a date or timestamp string into an aware UTC datetime.

    Accepts the API format and the variants that filters allow: no fraction, a "T"
    separator, a "Z" or numeric offset, or a date alone (midnight). A value without an
    offset is UTC. Returns None for any other string.
    """
    if not _TIMESTAMP_PATTERN.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def stamp(day: date | str, hour: int = 0, microseconds: int = 0) -> str:
    """Format midnight UTC of `day`, plus `hour` hours and `microseconds`, in API format.

    The sample and synthetic datasets use the microsecond offset to keep the
    timestamps of one collection distinct.
    """
    if isinstance(day, str):
        day = date.fromisoformat(day)
    moment = datetime.combine(day, time(), tzinfo=UTC)
    return format_timestamp(moment + timedelta(hours=hour, microseconds=microseconds))
