"""The crm-assets code location: every asset, check, resource, job, schedule and sensor."""

import dagster as dg
from dagster_dlt import DagsterDltResource

from crm_assets.assets import crm_assets
from crm_assets.checks import build_crm_checks, build_freshness_checks
from crm_assets.entities import CRM_ENTITIES
from crm_assets.jobs import build_crm_sync_schedule, crm_full_refresh_job, crm_sync_job
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_assets.sensors import build_freshness_sensor, crm_run_failure_sensor

crm_table_checks = build_crm_checks(CRM_ENTITIES)
crm_freshness_checks = build_freshness_checks(crm_assets)

defs = dg.Definitions(
    assets=[crm_assets],
    asset_checks=[crm_table_checks, *crm_freshness_checks],
    jobs=[crm_sync_job, crm_full_refresh_job],
    schedules=[build_crm_sync_schedule()],
    sensors=[build_freshness_sensor(crm_freshness_checks), crm_run_failure_sensor],
    # A CRM run has two steps, the sync and its checks, which run one after the other. A
    # process per step would add several seconds of start-up to each and isolate nothing.
    executor=dg.in_process_executor,
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
