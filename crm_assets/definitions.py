"""The crm-assets code location: every asset, resource, job and schedule, and no logic."""

import dagster as dg
from dagster_dlt import DagsterDltResource

from crm_assets.assets import crm_assets
from crm_assets.jobs import build_crm_sync_schedule, crm_full_refresh_job, crm_sync_job
from crm_assets.resources import CrmApiResource, CrmWarehouseResource

defs = dg.Definitions(
    assets=[crm_assets],
    jobs=[crm_sync_job, crm_full_refresh_job],
    schedules=[build_crm_sync_schedule()],
    resources={
        "dlt": DagsterDltResource(),
        "crm_api": CrmApiResource(
            api_url=dg.EnvVar("CRM_API_URL"),
            space_id=dg.EnvVar("CRM_SPACE_ID"),
            username=dg.EnvVar("CRM_USERNAME"),
            password=dg.EnvVar("CRM_PASSWORD"),
        ),
        "warehouse": CrmWarehouseResource(),
    },
)
