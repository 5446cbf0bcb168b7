"""crm-assets: a Dagster code location that syncs a CRM REST API into a warehouse with dlt."""

import os

# dlt sends anonymous usage events to dlthub's server unless configured not to. This project
# contacts no host but the configured CRM API and warehouse, so the default here is off;
# set RUNTIME__DLTHUB_TELEMETRY=true to opt in.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
