"""Deterministic generated records of any size, shaped like the CRM's collections."""

import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from crm_assets.emulator.ids import record_id
from crm_assets.emulator.store import CrmStore
from crm_assets.emulator.timestamps import format_timestamp

DEFAULT_COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
# Record i of a collection is created at START + i minutes (plus the collection's
# position in microseconds) and modified less than a minute later, so both `created`
# and `modified` strictly increase with i.
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=1)
# Owners are drawn from the first Clients only, as a real space has few sales people.
OWNER_POOL_SIZE = 50

FIRST_NAMES = ("Ada", "Bruno", "Chloe", "Dmitri", "Elena", "Farah", "Goran", "Hana", "Ivan", "Jade",
               "Kofi", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara")
LAST_NAMES = ("Novak", "Okafor", "Schmidt", "Tanaka", "Silva", "Kowalski", "Haddad", "Larsen",
              "Moreau", "Rossi", "Nguyen", "Brennan", "Ivanova", "Costa", "Fischer", "Lindqvist")
COMPANY_WORDS = ("North", "Blue", "Silver", "Granite", "Harbor", "Summit", "Cedar", "Polar")
COMPANY_KINDS = ("Systems", "Logistics", "Foods", "Labs", "Energy", "Retail", "Media", "Works")
INDUSTRIES = ("software", "retail", "medical", "finance", "energy", "telecom", "services")
CITIES = (("Berlin", "Germany"), ("Lyon", "France"), ("Austin", "United States"),
          ("Osaka", "Japan"), ("Porto", "Portugal"), ("Toronto", "Canada"), ("Nairobi", "Kenya"))
TIMEZONES = ("Europe/Berlin", "Europe/Paris", "America/Chicago", "Asia/Tokyo", "America/Toronto")
TITLES = ("CEO", "CTO", "Buyer", "Head of Sales", "Engineer", "Office Manager", None)
APPOINTMENT_TYPE_ID = record_id("ActivityTypes", "Appointment")
TASK_TYPE_ID = record_id("ActivityTypes", "Task")


def synthetic_store(
    records: int = 1000,
    collections: Sequence[str] = DEFAULT_COLLECTIONS,
    seed: int = 0,
    clock_start: datetime | None = None,
) -> CrmStore:
    """Return a new store with `records` generated records in each collection.

    Ids are the UUIDs of "<Collection>:<i>" (see ids.record_id) and do not depend on
    `seed`; field values do. The same arguments give the same records in every process.
    """
    if records < 0:
        raise ValueError(f"records must not be negative, got {records}.")
    store = CrmStore(clock_start=clock_start)
    for position, collection in enumerate(collections):
        store.put_raw_many(collection, synthetic_records(collection, records, seed, position))
    return store


def synthetic_records(collection: str, count: int, seed: int = 0, position: int = 0) -> Iterator[dict]:
    """Yield `count` generated records of one collection, oldest first."""
    rng = random.Random(f"{seed}:{collection}")
    build_fields = FIELD_BUILDERS.get(collection, _generic_fields)
    owner_ids = [record_id("Clients", index) for index in range(min(count, OWNER_POOL_SIZE) or 1)]
    offset = timedelta(microseconds=position)
    for index in range(count):
        created = START + index * STEP + offset
        modified = created + timedelta(microseconds=rng.randrange(59_000_000))
        record = {
            "id": record_id(collection, index),
            "created": format_timestamp(created),
            "modified": format_timestamp(modified),
            "revision": rng.randint(1, 5),
            "is_deleted": False,
            "is_delete_protected": False,
        }
        record.update(build_fields(rng, index, count, rng.choice(owner_ids), modified))
        if collection == "Entities":
            del record["revision"]
        yield record


def _account_fields(rng: random.Random, index: int, count: int, owner_id: str, modified: datetime) -> dict:
    city, country = rng.choice(CITIES)
    name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {index}"
    return {
        "name": name,
        "email1": f"info{index}@example.com",
        "phone1": f"+1-555-{index % 10_000:04d}",
        "city": city,
        "country": country,
        "industry": rng.choice(INDUSTRIES),
        "annual_revenue": round(rng.uniform(0.5, 5_000.0), 2),
        "employees": rng.randint(1, 20_000),
        "owner_id": owner_id,
    }


def _activity_fields(rng: random.Random, index: int, count: int, owner_id: str, modified: datetime) -> dict:
    is_task = rng.random() < 0.5
    due = modified + timedelta(days=rng.randint(-30, 30))
    start = None if is_task else format_timestamp(due)
    end = None if is_task else format_timestamp(due + timedelta(hours=1))
    return {
        "subject": f"{'Call back' if is_task else 'Meeting'} #{index}",
        "status": "done" if due < modified else "planned",
        "due_date": due.date().isoformat(),
        "start_date": start,
        "end_date": end,
        "activity_type_id": TASK_TYPE_ID if is_task else APPOINTMENT_TYPE_ID,
        "table_name": "Tasks" if is_task else "Appointments",
        "owner_id": owner_id,
        "account_id": record_id("Accounts", rng.randrange(count)),
    }


def _client_fields(rng: random.Random, index: int, count: int, owner_id: str, modified: datetime) -> dict:
    first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {
        "first_name": first_name,
        "last_name": last_name,
        "email": f"{first_name}.{last_name}.{index}@example.com".lower(),
        "timezone": rng.choice(TIMEZONES),
        "last_active": format_timestamp(modified),
    }


def _contact_fields(rng: random.Random, index: int, count: int, owner_id: str, modified: datetime) -> dict:
    first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, country = rng.choice(CITIES)
    return {
        "first_name": first_name,
        "last_name": last_name,
        "email1": f"{first_name}.{last_name}.{index}@example.com".lower(),
        "title": rng.choice(TITLES),
        "city": city,
        "country": country,
        "primary_account_id": record_id("Accounts", rng.randrange(count)),
        "owner_id": owner_id,
    }


def _entity_fields(rng: random.Random, index: int, count: int, owner_id: str, modified: datetime) -> dict:
    if index < len(DEFAULT_COLLECTIONS):
        table_name = DEFAULT_COLLECTIONS[index]
        entity_name = {"Activities": "Activity", "Entities": "Entity"}.get(table_name, table_name[:-1])
        return {"entity_name": entity_name, "table_name": table_name, "entity_type": "standard"}
    number = index - len(DEFAULT_COLLECTIONS) + 1
    return {"entity_name": f"CustomEntity{number}", "table_name": f"CustomEntities{number}", "entity_type": "custom"}


def _generic_fields(rng: random.Random, index: int, count: int, owner_id: str, modified: datetime) -> dict:
    return {
        "name": f"Record {index}",
        "amount": round(rng.uniform(0.0, 10_000.0), 2),
        "owner_id": owner_id,
    }


FieldBuilder = Callable[[random.Random, int, int, str, datetime], dict]
FIELD_BUILDERS: dict[str, FieldBuilder] = {
    "Accounts": _account_fields,
    "Activities": _activity_fields,
    "Clients": _client_fields,
    "Contacts": _contact_fields,
    "Entities": _entity_fields,
}
