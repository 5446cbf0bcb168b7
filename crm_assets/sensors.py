"""Sensors: freshness checks on an interval, and an alert for every failed CRM run."""

import json
import os
import re
import warnings

import dagster as dg
import requests

from crm_assets.assets import KEY_PREFIX
from crm_assets.source import SOURCE_NAME

ALERT_TIMEOUT_SECONDS = 10.0
FRESHNESS_INTERVAL_SECONDS = 600
CRM_STEPS = {f"{SOURCE_NAME}_sync", "crm_table_checks"}


def build_freshness_sensor(freshness_checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    """Build the sensor that evaluates the freshness checks every ten minutes."""
    with warnings.catch_warnings():
        # Superseded in Dagster 1.13 together with the freshness checks it runs.
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=freshness_checks,
            minimum_interval_seconds=FRESHNESS_INTERVAL_SECONDS,
            name="crm_freshness_sensor",
            default_status=dg.DefaultSensorStatus.RUNNING,
        )


def is_crm_run(context: dg.RunFailureSensorContext) -> bool:
    """Tell whether the failed run targeted a CRM asset or failed in a CRM step."""
    selection = context.dagster_run.asset_selection or set()
    if any(key.path[0] == KEY_PREFIX for key in selection):
        return True
    return any(event.step_key in CRM_STEPS for event in context.get_step_failure_events())


def failure_summary(context: dg.RunFailureSensorContext) -> str:
    """Return one line: the run id and the first line of the error, which names the collections."""
    errors = [event.step_failure_data.error for event in context.get_step_failure_events()]
    first_lines = [_first_line(error.message) for error in errors if error and error.message.strip()]
    reason = first_lines[0] if first_lines else (context.failure_event.message or "no error message")
    return f"CRM sync failed (run {context.dagster_run.run_id}): {reason}"


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0]
    # Dagster prefixes the exception class, e.g. "dagster._core.definitions.events.Failure: ".
    return re.sub(r"^[\w.]+(Error|Exception|Failure): ", "", line)


def post_alert(webhook_url: str, text: str) -> None:
    """Post the summary as Slack-compatible JSON; a failed post is logged by the caller."""
    response = requests.post(
        webhook_url,
        data=json.dumps({"text": text}),
        headers={"Content-Type": "application/json"},
        timeout=ALERT_TIMEOUT_SECONDS,
    )
    response.raise_for_status()


@dg.run_failure_sensor(
    name="crm_run_failure_sensor",
    description="Logs one summary per failed CRM run and posts it to CRM_ALERT_WEBHOOK_URL when set.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def crm_run_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    if not is_crm_run(context):
        return
    summary = failure_summary(context)
    context.log.error(summary)
    webhook_url = os.environ.get("CRM_ALERT_WEBHOOK_URL")
    if not webhook_url:
        return
    try:
        post_alert(webhook_url, summary)
    except requests.RequestException as error:
        context.log.error(
            f"Posting the alert for run {context.dagster_run.run_id} to CRM_ALERT_WEBHOOK_URL failed: "
            f"{type(error).__name__}. Check that the webhook is reachable."
        )
