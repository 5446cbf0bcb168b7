"""The CRM collections this project loads: one row per collection.

The dlt source, the Dagster asset specs, the docs and the tests all read this table, so
adding a collection (for example `Opportunities`) is one new row in `CRM_ENTITIES`.
"""

import re
from dataclasses import dataclass, field

# Collections of the CRM REST API v100 that a row may name. The API has about 200; these
# are the ones this project has field types for. Extend the set to load another one.
KNOWN_COLLECTIONS: frozenset[str] = frozenset(
    {
        "Accounts",
        "Activities",
        "Appointments",
        "Clients",
        "Contacts",
        "Entities",
        "Fields",
        "Leads",
        "Memos",
        "Notes",
        "Opportunities",
        "OpptyProductRelations",
        "Pipelines",
        "Products",
        "Projects",
        "Quotes",
        "SalesUnits",
        "Steps",
        "Tags",
        "Tasks",
    }
)


@dataclass(frozen=True)
class CrmEntity:
    """One CRM collection loaded into one warehouse table.

    `collection` is the API's PascalCase name, `cursor_field` the timestamp that incremental
    syncs filter on (None: the collection is replaced whole on every sync), and `columns`
    the known fields with their dlt data types, created even while every value is null.
    """

    collection: str
    description: str
    primary_key: str = "id"
    cursor_field: str | None = "modified"
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def table_name(self) -> str:
        """Warehouse table name: the collection name in snake case, e.g. `oppty_product_relations`."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.collection).lower()


# Fields every record carries, typed so that they exist before the first non-null value.
COMMON_COLUMNS: dict[str, str] = {
    "id": "text",
    "created": "timestamp",
    "modified": "timestamp",
    "revision": "bigint",
    "is_deleted": "bool",
    "is_delete_protected": "bool",
}

CRM_ENTITIES: tuple[CrmEntity, ...] = (
    CrmEntity(
        collection="Accounts",
        description="Companies the sales team sells to, with industry, revenue and owner.",
        columns={
            "name": "text",
            "email1": "text",
            "phone1": "text",
            "address": "text",
            "city": "text",
            "country": "text",
            "industry": "text",
            "owner_id": "text",
            "annual_revenue": "double",
        },
    ),
    CrmEntity(
        collection="Activities",
        description="Tasks and appointments of the sales team; `table_name` tells which.",
        columns={
            "subject": "text",
            "status": "text",
            "due_date": "text",
            "start_date": "text",
            "end_date": "text",
            "activity_type_id": "text",
            "table_name": "text",
            "owner_id": "text",
        },
    ),
    CrmEntity(
        collection="Clients",
        description="Users of the CRM space: the sales people who own records.",
        columns={
            "email": "text",
            "first_name": "text",
            "last_name": "text",
            "timezone": "text",
            "last_active": "text",
        },
    ),
    CrmEntity(
        collection="Contacts",
        description="People at accounts, with name, e-mail, title and primary account.",
        columns={
            "first_name": "text",
            "last_name": "text",
            "email1": "text",
            "phone1": "text",
            "title": "text",
            "primary_account_id": "text",
            "owner_id": "text",
        },
    ),
    CrmEntity(
        collection="Entities",
        description="Registry of the entity types of the CRM space, custom types included.",
        cursor_field=None,
        columns={"entity_name": "text", "table_name": "text", "entity_type": "text"},
    ),
)


def validate_entities(entities: tuple[CrmEntity, ...]) -> tuple[CrmEntity, ...]:
    """Reject unknown or repeated collection names, listing the valid ones."""
    unknown = sorted({entity.collection for entity in entities} - KNOWN_COLLECTIONS)
    if unknown:
        raise ValueError(
            f"Unknown CRM collection(s) in the entity table: {', '.join(unknown)}. "
            f"Valid names: {', '.join(sorted(KNOWN_COLLECTIONS))}. "
            "Fix the spelling (PascalCase plural) or add the name to KNOWN_COLLECTIONS."
        )
    tables = [entity.table_name for entity in entities]
    repeated = sorted({name for name in tables if tables.count(name) > 1})
    if repeated:
        raise ValueError(f"The entity table lists these tables more than once: {repeated}.")
    return entities
