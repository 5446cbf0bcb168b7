"""Errors raised by the CRM source, each naming the collection, the value at fault and a fix."""


class CrmError(Exception):
    """Base class of every error this package raises on purpose."""


class CrmConfigError(CrmError):
    """A setting is missing or invalid; raised before any request is sent."""


class CrmApiError(CrmError):
    """The CRM API returned an error status for a collection's request."""

    def __init__(self, collection: str, status: int, message: str) -> None:
        super().__init__(message)
        self.collection = collection
        self.status = status


class CrmProtocolError(CrmError):
    """A 200 response broke the API contract, so the listing cannot continue safely."""

    def __init__(self, collection: str, page: int, problem: str) -> None:
        super().__init__(
            f"Collection {collection}: page {page} is invalid: {problem}. The sync of "
            f"{collection} stopped so that no partial table is reported as complete. "
            "Retry later; if it persists, report the response to the CRM vendor."
        )
        self.collection = collection
        self.page = page


class CrmTransportError(CrmError):
    """Requests to the CRM API kept failing (timeouts, connection errors, 429 or 5xx)."""

    def __init__(self, collection: str, message: str) -> None:
        super().__init__(message)
        self.collection = collection


class WarehouseLockedError(CrmError):
    """Another process has the DuckDB file open for writing."""
