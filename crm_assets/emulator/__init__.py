"""Local HTTP emulator of the CRM REST API (version 100), for tests and demos.

The emulator serves `GET /api/v100/rest/spaces/{space_id}/entities/{Collection}` on
127.0.0.1 with HTTP Basic authentication, keyset cursors, filters and soft deletes,
from an in-memory CrmStore. Faults injects rate limits, server errors, stalls and
malformed bodies. Run `python -m crm_assets.emulator --help` for the command line.
"""

from crm_assets.emulator.faults import Faults
from crm_assets.emulator.sample import SAMPLE_COUNTS, load_sample_store
from crm_assets.emulator.server import CrmEmulator, RequestRecord
from crm_assets.emulator.store import CrmStore
from crm_assets.emulator.synthetic import DEFAULT_COLLECTIONS, synthetic_store
from crm_assets.emulator.timestamps import format_timestamp, parse_timestamp

__all__ = [
    "DEFAULT_COLLECTIONS",
    "SAMPLE_COUNTS",
    "CrmEmulator",
    "CrmStore",
    "Faults",
    "RequestRecord",
    "format_timestamp",
    "load_sample_store",
    "parse_timestamp",
    "synthetic_store",
]
