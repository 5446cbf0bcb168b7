"""The `filter[FIELD]` and `filter-op[FIELD]` query parameters of a listing."""

import re
from dataclasses import dataclass
from datetime import datetime

from crm_assets.emulator.errors import invalid_parameter
from crm_assets.emulator.timestamps import parse_timestamp

OPERATORS = ("eq", "not-eq", "gt", "gte", "lt", "lte", "contains", "null", "not-null")
_VALUELESS_OPERATORS = frozenset({"null", "not-null"})
# Filter values for these fields must be timestamps, so a typo gives a 400, not an
# empty result.
TIMESTAMP_FIELDS = frozenset({"created", "modified"})

_FILTER_PARAMETER = re.compile(r"filter\[(.+)\]")
_OPERATOR_PARAMETER = re.compile(r"filter-op\[(.+)\]")
_BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class FieldFilter:
    """One condition on a record field. A listing returns the records that match all filters.

    Comparison rules: a timestamp string is compared as a datetime when the filter
    value is a timestamp too, numbers compare numerically, booleans accept
    true/false/1/0, and other strings compare as strings. A missing or null field
    matches only `null` and `not-eq`. `contains` is a case-insensitive substring test,
    applied to each element of a list.
    """

    field: str
    operator: str
    value: str | None
    timestamp: datetime | None

    def matches(self, record: dict) -> bool:
        value = record.get(self.field)
        if self.operator == "null":
            return value is None
        if self.operator == "not-null":
            return value is not None
        if self.operator == "contains":
            return _contains(value, self.value or "")
        order = None if value is None else self._compare(value)
        if order is None:
            return self.operator == "not-eq"
        return _ORDER_TESTS[self.operator](order)

    def _compare(self, value: object) -> int | None:
        """Return -1, 0 or 1 comparing the record value with the filter value, or None."""
        text = self.value or ""
        if isinstance(value, bool):
            expected = _BOOLEAN_WORDS.get(text.lower())
            return None if expected is None else _sign(int(value) - int(expected))
        if isinstance(value, int | float):
            try:
                return _sign(value - float(text))
            except ValueError:
                return None
        if isinstance(value, str):
            moment = parse_timestamp(value) if self.timestamp is not None else None
            if moment is not None and self.timestamp is not None:
                return _sign((moment - self.timestamp).total_seconds())
            return (value > text) - (value < text)
        return None


_ORDER_TESTS = {
    "eq": lambda order: order == 0,
    "not-eq": lambda order: order != 0,
    "gt": lambda order: order > 0,
    "gte": lambda order: order >= 0,
    "lt": lambda order: order < 0,
    "lte": lambda order: order <= 0,
}


def parse_filters(params: dict[str, str]) -> list[FieldFilter]:
    """Build the filters of a request. Raises ApiError (400) naming a bad parameter."""
    fields: set[str] = set()
    for name in params:
        match = _FILTER_PARAMETER.fullmatch(name) or _OPERATOR_PARAMETER.fullmatch(name)
        if match:
            fields.add(match.group(1))
    return [_parse_filter(field, params) for field in sorted(fields)]


def _parse_filter(field: str, params: dict[str, str]) -> FieldFilter:
    operator_parameter = f"filter-op[{field}]"
    value_parameter = f"filter[{field}]"
    operator = params.get(operator_parameter, "eq").strip().lower() or "eq"
    if operator not in OPERATORS:
        expected = ", ".join(OPERATORS)
        raise invalid_parameter(
            operator_parameter, f"has unknown operator {operator!r}; expected one of {expected}."
        )
    value = params.get(value_parameter)
    if operator in _VALUELESS_OPERATORS:
        return FieldFilter(field, operator, value, None)
    if value is None:
        raise invalid_parameter(
            value_parameter, f"is missing, but operator {operator!r} needs a value."
        )
    timestamp = parse_timestamp(value.strip())
    if field in TIMESTAMP_FIELDS and operator != "contains" and timestamp is None:
        raise invalid_parameter(
            value_parameter,
            f"must be a UTC timestamp such as '2024-05-01 00:00:00', got {value!r}.",
        )
    return FieldFilter(field, operator, value, timestamp)


def _contains(value: object, needle: str) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return any(_contains(element, needle) for element in value)
    return needle.lower() in str(value).lower()


def _sign(number: float) -> int:
    return (number > 0) - (number < 0)
