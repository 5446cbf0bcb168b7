"""The job that materializes every CRM asset, and its daily schedule."""

import os

import dagster as dg

from crm_assets.assets import FULL_REFRESH_TAG, GROUP_NAME
from crm_assets.spaces import SpaceConfig, configured_spaces

DEFAULT_CRON = "0 3 * * *"
DEFAULT_TIMEZONE = "UTC"

crm_sync_job = dg.define_asset_job(
    name="crm_sync_job",
    selection=dg.AssetSelection.groups(GROUP_NAME),
    description="Materialize every CRM asset: one sync of all configured collections.",
)

crm_full_refresh_job = dg.define_asset_job(
    name="crm_full_refresh_job",
    selection=dg.AssetSelection.groups(GROUP_NAME),
    tags={FULL_REFRESH_TAG: "true"},
    description=(
        "Re-read the selected CRM collections completely and rebuild their tables, "
        "resetting their incremental cursors. Select a subset of assets in the launchpad "
        "to rebuild only those."
    ),
)


def build_crm_sync_schedule(spaces: tuple[SpaceConfig, ...] | None = None) -> dg.ScheduleDefinition:
    """Build the daily schedule: one run, or one run per space when several are configured.

    `CRM_SCHEDULE_CRON` and `CRM_SCHEDULE_TIMEZONE` are read when the code location loads.
    """
    space_names = [space.name for space in (spaces if spaces is not None else configured_spaces()) or ()]

    @dg.schedule(
        name="crm_sync_schedule",
        job=crm_sync_job,
        cron_schedule=os.environ.get("CRM_SCHEDULE_CRON") or DEFAULT_CRON,
        execution_timezone=os.environ.get("CRM_SCHEDULE_TIMEZONE") or DEFAULT_TIMEZONE,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs crm_sync_job daily. Start it in the UI (Automation) or with `dagster schedule start`.",
    )
    def crm_sync_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        tick = context.scheduled_execution_time.isoformat()
        if not space_names:
            return [dg.RunRequest(run_key=tick)]
        return [dg.RunRequest(run_key=f"{tick}/{name}", partition_key=name) for name in space_names]

    return crm_sync_schedule
