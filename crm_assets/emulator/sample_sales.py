"""Mapping of the Maven sales dataset to Accounts, Clients, Opportunities and Activities.

Every function takes the CSV rows as csv.DictReader returns them (empty string for a
missing value) and returns records in the API's shape. Opportunities without an
engage date are prospects; they are dated at the end of the data, 2017-12-31.
"""

import re

from crm_assets.emulator.ids import record_id, stable_index
from crm_assets.emulator.timestamps import stamp

DATA_END_DATE = "2017-12-31"
# Accounts and Clients exist before the first opportunity (2016-10-20).
SETUP_DATE = "2016-09-01"
TIMEZONES = {
    "Central": "America/Chicago",
    "East": "America/New_York",
    "West": "America/Los_Angeles",
}
APPOINTMENT_TYPE_ID = record_id("ActivityTypes", "Appointment")
TASK_TYPE_ID = record_id("ActivityTypes", "Task")


def base_record(collection: str, key: str, created: str, modified: str) -> dict:
    """Return the server fields of a record. Revision 2 means it changed once after creation."""
    return {
        "id": record_id(collection, key),
        "created": created,
        "modified": modified,
        "revision": 1 if modified == created else 2,
        "is_deleted": False,
        "is_delete_protected": False,
    }


def build_clients(teams: list[dict[str, str]], pipeline: list[dict[str, str]]) -> list[dict]:
    """Map sales agents, then their managers in order of first appearance, to Clients.

    `last_active` is the agent's latest engage or close date; a manager's is the latest
    of their agents.
    """
    last_dates = _latest_dates(pipeline, "sales_agent")
    managers: dict[str, dict[str, str]] = {}
    clients = []
    for row in teams:
        managers.setdefault(row["manager"], row)
        last_date = last_dates.get(row["sales_agent"], SETUP_DATE)
        manager_id = record_id("Clients", row["manager"])
        clients.append(_client(row["sales_agent"], row, last_date, len(clients), manager_id))
    for manager, row in managers.items():
        agents = [team["sales_agent"] for team in teams if team["manager"] == manager]
        last_date = max(last_dates.get(agent, SETUP_DATE) for agent in agents)
        clients.append(_client(manager, row, last_date, len(clients), None))
    return clients


def _client(
    name: str, team: dict[str, str], last_date: str, index: int, manager_id: str | None
) -> dict:
    first_name, _, last_name = name.partition(" ")
    last_active = stamp(last_date, 18, index)
    record = base_record("Clients", name, stamp(SETUP_DATE, 8, index), last_active)
    record.update(
        first_name=first_name,
        last_name=last_name,
        email=f"{_slug(first_name)}.{_slug(last_name)}@example.com",
        timezone=TIMEZONES[team["regional_office"]],
        regional_office=team["regional_office"],
        manager_id=manager_id,
        role="agent" if manager_id else "manager",
        last_active=last_active,
    )
    return record


def build_accounts(
    rows: list[dict[str, str]], pipeline: list[dict[str, str]], agent_ids: list[str]
) -> list[dict]:
    """Map accounts.csv to Accounts, owned by an agent picked by a stable hash of the name.

    An account is created 30 days before its first engage date and last modified at
    its latest engage or close date. Address, phone and city are not in the data.
    """
    first_dates = _earliest_dates(pipeline, "account")
    last_dates = _latest_dates(pipeline, "account")
    accounts = []
    for index, row in enumerate(rows):
        name = row["account"]
        created = stamp(first_dates.get(name, SETUP_DATE), 9 - 30 * 24, index)
        modified = stamp(last_dates.get(name, SETUP_DATE), 17, index)
        record = base_record("Accounts", name, created, max(created, modified))
        parent = row["subsidiary_of"]
        record.update(
            name=name,
            industry=row["sector"],
            year_established=int(row["year_established"]),
            annual_revenue=float(row["revenue"]),
            employees=int(row["employees"]),
            country=row["office_location"],
            parent_account_id=record_id("Accounts", parent) if parent else None,
            owner_id=agent_ids[stable_index(f"Accounts:{name}", len(agent_ids))],
            email1=f"info@{_slug(name)}.example.com",
            phone1=None,
            address=None,
            city=None,
        )
        accounts.append(record)
    return accounts


def build_opportunities(pipeline: list[dict[str, str]]) -> list[dict]:
    """Map sales_pipeline.csv to Opportunities, created at the engage date and
    modified at the close date when there is one."""
    opportunities = []
    for index, row in enumerate(pipeline):
        engage_date = row["engage_date"] or DATA_END_DATE
        created = stamp(engage_date, 9, index)
        modified = stamp(row["close_date"], 17, index) if row["close_date"] else created
        record = base_record("Opportunities", row["opportunity_id"], created, modified)
        account = row["account"]
        record.update(
            name=f"{row['product']} for {account}" if account else f"{row['product']} (no account)",
            opportunity_key=row["opportunity_id"],
            deal_stage=row["deal_stage"],
            product=row["product"],
            account_id=record_id("Accounts", account) if account else None,
            owner_id=record_id("Clients", row["sales_agent"]),
            engage_date=row["engage_date"] or None,
            close_date=row["close_date"] or None,
            close_value=float(row["close_value"]) if row["close_value"] else None,
        )
        opportunities.append(record)
    return opportunities


def build_activities(pipeline: list[dict[str, str]]) -> list[dict]:
    """Derive Activities: an appointment on each engage date and a task on each close date.

    Both are "done" because every date in the data is past. Missing dates give no activity.
    """
    activities = []
    for index, row in enumerate(pipeline):
        if row["engage_date"]:
            activities.append(_appointment(row, 2 * index))
        if row["close_date"]:
            activities.append(_close_task(row, 2 * index + 1))
    return activities


def _appointment(row: dict[str, str], sequence: int) -> dict:
    day = row["engage_date"]
    account = f" for {row['account']}" if row["account"] else ""
    key = f"{row['opportunity_id']}:engage"
    record = base_record("Activities", key, stamp(day, 8, sequence), stamp(day, 11, sequence))
    record.update(
        subject=f"Discovery meeting: {row['product']}{account}",
        status="done",
        due_date=day,
        start_date=stamp(day, 10),
        end_date=stamp(day, 11),
        activity_type_id=APPOINTMENT_TYPE_ID,
        table_name="Appointments",
        **_activity_links(row),
    )
    return record


def _close_task(row: dict[str, str], sequence: int) -> dict:
    day = row["close_date"]
    account = f" with {row['account']}" if row["account"] else ""
    created = stamp(row["engage_date"] or day, 9, sequence)
    key = f"{row['opportunity_id']}:close"
    record = base_record("Activities", key, created, stamp(day, 17, sequence))
    record.update(
        subject=f"Close deal: {row['product']}{account}",
        status="done",
        due_date=day,
        start_date=None,
        end_date=None,
        activity_type_id=TASK_TYPE_ID,
        table_name="Tasks",
        **_activity_links(row),
    )
    return record


def _activity_links(row: dict[str, str]) -> dict:
    return {
        "opportunity_id": record_id("Opportunities", row["opportunity_id"]),
        "owner_id": record_id("Clients", row["sales_agent"]),
        "account_id": record_id("Accounts", row["account"]) if row["account"] else None,
    }


def _latest_dates(pipeline: list[dict[str, str]], column: str) -> dict[str, str]:
    latest: dict[str, str] = {}
    for row in pipeline:
        for day in (row["engage_date"], row["close_date"]):
            if day and day > latest.get(row[column], ""):
                latest[row[column]] = day
    return latest


def _earliest_dates(pipeline: list[dict[str, str]], column: str) -> dict[str, str]:
    earliest: dict[str, str] = {}
    for row in pipeline:
        day = row["engage_date"]
        if day and (row[column] not in earliest or day < earliest[row[column]]):
            earliest[row[column]] = day
    return earliest


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
