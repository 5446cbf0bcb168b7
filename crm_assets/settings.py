"""Validation of the CRM connection settings, run before any request is sent."""

import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from crm_assets.errors import CrmConfigError

MAX_PAGE_SIZE = 100  # the API clamps `first` to 100
_UNSAFE_SPACE_ID = re.compile(r"[/\\?#%\s]")


@dataclass(frozen=True)
class RetrySettings:
    """Retry rules of requests: attempts, waits in seconds, and the per-request timeout."""

    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_min: float = 1.0
    retry_after_max: float = 120.0
    timeout: float = 30.0


@dataclass(frozen=True)
class CrmConnection:
    """Validated address and credentials of one CRM space."""

    api_url: str
    space_id: str
    username: str
    password: str
    page_size: int = MAX_PAGE_SIZE

    @property
    def base_url(self) -> str:
        return f"{self.api_url}/api/v100/rest/spaces/{self.space_id}/"

    def __repr__(self) -> str:
        return f"CrmConnection(api_url={self.api_url!r}, space_id={self.space_id!r}, username=***, password=***)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_api_url(api_url: str) -> str:
    """Return the API URL without a trailing slash, or raise naming what is wrong."""
    parts = urlsplit(api_url.strip())
    # Checked first, because the other messages quote the URL.
    if "@" in parts.netloc:
        raise CrmConfigError(
            "CRM_API_URL must not contain credentials; set CRM_USERNAME and CRM_PASSWORD instead."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CrmConfigError(
            f"CRM_API_URL={api_url!r} is invalid: expected http(s)://HOST, "
            "e.g. https://eu-central.api.example.com."
        )
    if parts.query or parts.fragment:
        raise CrmConfigError(f"CRM_API_URL={api_url!r} is invalid: remove the query or fragment.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise CrmConfigError(
            f"CRM_API_URL={api_url!r} uses plain http to a remote host, which would send the "
            "credentials unencrypted. Use https (plain http is accepted only for 127.0.0.1 or localhost)."
        )
    return api_url.strip().rstrip("/")


def validate_space_id(space_id: str) -> str:
    """Return the space id if it is one safe URL path segment, or raise."""
    if not space_id or space_id in (".", "..") or _UNSAFE_SPACE_ID.search(space_id):
        raise CrmConfigError(
            f"CRM_SPACE_ID={space_id!r} is invalid: it must be one path segment without "
            "'/', '\\', '?', '#', '%', whitespace, and must not be '.' or '..'. "
            "Copy the space id from the CRM's API settings."
        )
    return space_id


def validate_page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise CrmConfigError(
            f"CRM_PAGE_SIZE={page_size} is invalid: the API serves 1 to {MAX_PAGE_SIZE} records per page."
        )
    return page_size


def build_connection(
    api_url: str | None,
    space_id: str | None,
    username: str | None,
    password: str | None,
    page_size: int = MAX_PAGE_SIZE,
) -> CrmConnection:
    """Validate the four connection settings together, naming every missing one at once."""
    values = {
        "CRM_API_URL": api_url,
        "CRM_SPACE_ID": space_id,
        "CRM_USERNAME": username,
        "CRM_PASSWORD": password,
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise CrmConfigError(
            f"Missing CRM setting(s): {', '.join(missing)}. Set these environment variables "
            "(see the README's configuration table) and launch the run again."
        )
    if ":" in (username or ""):
        raise CrmConfigError(
            "CRM_USERNAME contains ':', which HTTP Basic authentication cannot carry in a user "
            "name. Copy the API token again from the CRM's API settings."
        )
    return CrmConnection(
        api_url=validate_api_url(api_url or ""),
        space_id=validate_space_id(space_id or ""),
        username=username or "",
        password=password or "",
        page_size=validate_page_size(page_size),
    )


@contextmanager
def scoped_environ(settings: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block only, then restore the previous values.

    dlt reads some of its settings only from configuration, so a sync passes them this way
    without changing them for other pipelines in the same process.
    """
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
