"""Store filled with the bundled real sample data, mapped to the CRM's collections.

Sources, described in each folder's SOURCE.txt under sample_data/: Maven Analytics'
"CRM + Sales + Opportunities" (accounts, sales teams, 8,800 opportunities of 2016-2017)
and the Contact records of Salesforce's Coral Cloud Resorts sample app. The mapping is
deterministic: ids are name-based UUIDs and timestamps derive from dates in the data.
"""

import csv
import functools
import json
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable

from crm_assets.emulator.ids import record_id, stable_index
from crm_assets.emulator.sample_sales import (
    build_accounts,
    build_activities,
    build_clients,
    build_opportunities,
)
from crm_assets.emulator.store import CrmStore
from crm_assets.emulator.timestamps import stamp

SALES_FOLDER = "maven-crm-sales-opportunities"
CONTACTS_FOLDER = "salesforce-coral-cloud-contacts"

# Record count of each collection of load_sample_store(). Clients are the 35 sales
# agents and their 6 managers. Activities are one appointment per engage date (8,300)
# and one task per close date (6,711).
SAMPLE_COUNTS: dict[str, int] = {
    "Accounts": 85,
    "Activities": 15_011,
    "Clients": 41,
    "Contacts": 992,
    "Entities": 6,
    "Opportunities": 8_800,
}

# Singular entity name of each collection, for the Entities registry.
_ENTITY_NAMES = {
    "Accounts": "Account",
    "Activities": "Activity",
    "Clients": "Client",
    "Contacts": "Contact",
    "Entities": "Entity",
    "Opportunities": "Opportunity",
}


def load_sample_store(clock_start: datetime | None = None) -> CrmStore:
    """Return a new store with the sample collections, identical on every call.

    `clock_start` is passed to CrmStore and only affects later writes.
    """
    store = CrmStore(clock_start=clock_start)
    for collection, records in sample_records().items():
        store.put_raw_many(collection, records)
    return store


@functools.cache
def sample_records() -> dict[str, tuple[dict, ...]]:
    """Return the mapped sample records by collection, read once per process.

    The dicts are shared between calls, so treat them as read-only.
    """
    pipeline = read_csv(SALES_FOLDER, "sales_pipeline.csv")
    clients = build_clients(read_csv(SALES_FOLDER, "sales_teams.csv"), pipeline)
    agent_ids = [client["id"] for client in clients if client["role"] == "agent"]
    accounts = build_accounts(read_csv(SALES_FOLDER, "accounts.csv"), pipeline, agent_ids)
    collections = {
        "Accounts": accounts,
        "Activities": build_activities(pipeline),
        "Clients": clients,
        "Contacts": build_contacts(read_contacts(), accounts),
        "Entities": build_entities(),
        "Opportunities": build_opportunities(pipeline),
    }
    return {name: tuple(records) for name, records in collections.items()}


def sample_path(folder: str, name: str) -> Traversable:
    return resources.files("crm_assets.emulator").joinpath("sample_data", folder, name)


def read_csv(folder: str, name: str) -> list[dict[str, str]]:
    with sample_path(folder, name).open("r", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_contacts() -> list[dict]:
    text = sample_path(CONTACTS_FOLDER, "data-Contact-large.json").read_text(encoding="utf-8")
    return json.loads(text)["records"]


def build_contacts(rows: list[dict], accounts: list[dict]) -> list[dict]:
    """Map Salesforce Contact records to Contacts.

    The source has no account link, so each contact gets an account picked by a
    stable hash of its referenceId, and that account's owner.
    """
    return [_contact(row, index, accounts) for index, row in enumerate(rows)]


def _contact(row: dict, index: int, accounts: list[dict]) -> dict:
    reference = row["attributes"]["referenceId"]
    account = accounts[stable_index(reference, len(accounts))]
    # One contact every 9 hours from October 2016, updated 0 to 89 days later.
    created_hour = 8 + 9 * index
    modified_hour = created_hour + 24 * stable_index(f"modified:{reference}", 90)
    return {
        "id": record_id("Contacts", reference),
        "created": stamp("2016-10-01", created_hour),
        "modified": stamp("2016-10-01", modified_hour),
        "revision": 1 if modified_hour == created_hour else 2,
        "is_deleted": False,
        "is_delete_protected": False,
        "first_name": row.get("FirstName"),
        "last_name": row.get("LastName"),
        "email1": row.get("Email"),
        "phone1": row.get("MobilePhone"),
        "title": None,
        "address": row.get("MailingStreet"),
        "city": row.get("MailingCity"),
        "state": row.get("MailingState"),
        "postal_code": row.get("MailingPostalCode"),
        "country": row.get("MailingCountry"),
        "birthdate": row.get("Birthdate"),
        "lead_source": row.get("LeadSource"),
        "primary_account_id": account["id"],
        "owner_id": account["owner_id"],
    }


def build_entities() -> list[dict]:
    """Return the Entities registry: one standard entity type per sample collection.

    Like the real API, Entities records have no `revision`.
    """
    entities = []
    for index, (collection, entity_name) in enumerate(sorted(_ENTITY_NAMES.items())):
        timestamp = stamp("2016-09-01", 0, index)
        entities.append(
            {
                "id": record_id("Entities", collection),
                "created": timestamp,
                "modified": timestamp,
                "is_deleted": False,
                "is_delete_protected": True,
                "entity_name": entity_name,
                "table_name": collection,
                "entity_type": "standard",
            }
        )
    return entities
