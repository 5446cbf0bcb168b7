"""Turn the exceptions of a failed sync attempt into one clear message per collection."""

import re

import dagster as dg

from crm_assets.errors import CrmApiError, CrmError


def exception_chain(error: BaseException) -> list[BaseException]:
    """Return the error and every exception it was raised from, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def root_crm_error(error: BaseException) -> CrmError | None:
    """Find the CrmError that dlt wrapped while running a pipeline step."""
    return next((item for item in exception_chain(error) if isinstance(item, CrmError)), None)


def failed_collection(
    error: Exception, database: str, memory_limit: str | None = None
) -> tuple[str, str]:
    """Return the collection at fault and its message, or raise if the whole run must stop.

    A 401 stops the run, because every collection uses the same credentials. A locked
    DuckDB file or DuckDB running out of memory stops it too. Errors that name no
    collection are re-raised unchanged.
    """
    cause = root_crm_error(error)
    if isinstance(cause, CrmApiError) and cause.status == 401:
        raise dg.Failure(description=str(cause), allow_retries=False) from None
    collection = getattr(cause, "collection", None)
    if cause is not None and collection:
        return collection, str(cause)
    locked = duckdb_lock_message(error, database)
    if locked is not None:
        raise dg.Failure(description=locked, allow_retries=False) from None
    if memory_limit is not None and _mentions(error, "Out of Memory Error"):
        raise dg.Failure(
            description=(
                f"DuckDB ran out of memory while loading into {database} "
                f"(CRM_DUCKDB_MEMORY_LIMIT={memory_limit}). Raise CRM_DUCKDB_MEMORY_LIMIT, "
                "for example to 512MB, and run the sync again: it finishes the interrupted load first."
            ),
            allow_retries=False,
        ) from None
    raise error


def _mentions(error: BaseException, phrase: str) -> bool:
    return any(phrase in str(item) for item in exception_chain(error))


def duckdb_lock_message(error: BaseException, database: str) -> str | None:
    """Return the message for a DuckDB file held by another process, or None for other errors."""
    if not (_mentions(error, "Could not set lock on file") or _mentions(error, "Conflicting lock")):
        return None
    text = " ".join(str(item) for item in exception_chain(error))
    holder = re.search(r"PID (\d+)", text)
    process = f" (PID {holder.group(1)})" if holder else ""
    return (
        f"The DuckDB file {database} is locked by another process{process}. DuckDB allows one "
        "writing process per file: close the other program (a notebook or the duckdb CLI, for "
        "example) or wait for the other run to finish, then launch this run again."
    )


def failure_summary(failed: dict[str, str], loaded: list[str]) -> str:
    """First line: which collections failed and which loaded; then one line per failure."""
    outcome = f"Loaded: {', '.join(loaded)}." if loaded else "No collection was loaded."
    lines = [f"{len(failed)} CRM collection(s) failed: {', '.join(sorted(failed))}. {outcome}"]
    lines += [message for _, message in sorted(failed.items())]
    return "\n".join(lines)
