"""Query parameters of a listing request, validated, and the keyset cursor format."""

import base64
import binascii
import json
from dataclasses import dataclass

from crm_assets.emulator.errors import invalid_parameter
from crm_assets.emulator.filters import FieldFilter, parse_filters

DEFAULT_PAGE_SIZE = 30
# Larger `first` values are clamped to this maximum instead of being rejected.
MAX_PAGE_SIZE = 100
DEFAULT_ORDER_FIELDS = ("created",)
# Cursor that a page without records carries when no `after` was given. It decodes to
# an empty key, which `after` accepts as "before the first record".
EMPTY_CURSOR = base64.b64encode(b"[]").decode("ascii")


@dataclass(frozen=True)
class SortField:
    name: str
    descending: bool = False


@dataclass(frozen=True)
class ListQuery:
    """A validated listing request. Its `order` always ends with the `id` tie-breaker."""

    page_size: int
    order: tuple[SortField, ...]
    after: str | None
    after_key: tuple | None
    filters: tuple[FieldFilter, ...]
    include_deleted: bool
    load_only: tuple[str, ...] | None


def parse_query(params: dict[str, str]) -> ListQuery:
    """Validate the query parameters. Raises ApiError (400) naming the first bad one.

    Unknown parameters are ignored.
    """
    order = _parse_order(params.get("order-by", ""))
    after = params.get("after")
    return ListQuery(
        page_size=_parse_page_size(params.get("first")),
        order=order,
        after=after,
        after_key=None if after is None else decode_cursor(after, len(order)),
        filters=tuple(parse_filters(params)),
        include_deleted=_parse_boolean("include-deleted", params.get("include-deleted", "")),
        load_only=_parse_load_only(params.get("load-only")),
    )


def encode_cursor(values: list) -> str:
    """Return the standard base64 of the compact JSON array `values`."""
    text = json.dumps(values, separators=(",", ":"), default=str)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_cursor(cursor: str, length: int) -> tuple:
    """Decode an `after` cursor into its key values. Raises ApiError (400) if invalid.

    Accepts the standard and the URL-safe base64 alphabets, missing padding, and a
    space where a client sent an unescaped "+". The key must have `length` values,
    one per sort field plus the id, or none at all.
    """
    text = cursor.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        values = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_parameter("after", "is not a cursor returned by this API.") from None
    if not isinstance(values, list) or len(values) not in (0, length):
        raise invalid_parameter(
            "after", f"does not match the requested order: expected {length} key values."
        )
    return tuple(values)


def _parse_page_size(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text.strip())
    except ValueError:
        size = 0
    if size < 1:
        raise invalid_parameter("first", f"must be an integer of at least 1, got {text!r}.")
    return min(size, MAX_PAGE_SIZE)


def _parse_order(text: str) -> tuple[SortField, ...]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        names = list(DEFAULT_ORDER_FIELDS)
    fields = []
    for name in names:
        descending = name.startswith("-")
        field_name = name[1:].strip() if descending else name
        if not field_name:
            raise invalid_parameter("order-by", f"contains an empty field name: {text!r}.")
        fields.append(SortField(field_name, descending))
    if all(field.name != "id" for field in fields):
        fields.append(SortField("id"))
    return tuple(fields)


def _parse_boolean(parameter: str, text: str) -> bool:
    normalized = text.strip().lower()
    if normalized in ("true", "1"):
        return True
    if normalized in ("", "false", "0"):
        return False
    raise invalid_parameter(parameter, f"must be true or false, got {text!r}.")


def _parse_load_only(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    return ("id", *[name for name in names if name != "id"])
