"""`pricing-ops guardrails evaluate` and `pricing-ops guardrails followup ...`.

Both run a job of the definitions in this process, recorded in the same Dagster instance the UI
shows: `guardrail_evaluation` (what the sensor starts) and `guardrail_operator_followup`.
Progress and what was done go to stderr; a JSON outcome goes to stdout for scripts.
"""

from __future__ import annotations

import argparse
import json

from orchestration.cli import CommandError, progress


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "guardrails", help="guardrail automation: evaluate now, or record an operator follow-up"
    )
    actions = group.add_subparsers(dest="guardrails_command", required=True, metavar="ACTION")

    p = actions.add_parser(
        "evaluate", help="one guardrail run now (refresh telemetry, evaluate, act, notify)"
    )
    p.set_defaults(func=cmd_evaluate)

    p = actions.add_parser("followup", help="record an operator's follow-up (pause, resume, escalate, note)")
    p.add_argument("--provider", required=True, help="the provider's id (fulfillment_providers.id)")
    p.add_argument(
        "--action", required=True, choices=["pause", "resume", "escalate", "note"], help="what the operator did"
    )
    p.add_argument("--actor", required=True, help="who takes the action (email or handle)")
    p.add_argument("--notes", default=None, help="free text for Slack and the follow-up feed")
    p.add_argument(
        "--conversion-cursor",
        default=None,
        help="the ?conversionCursor= of the historical conversion slice reviewed",
    )
    p.set_defaults(func=cmd_followup)



def cmd_evaluate(args: argparse.Namespace) -> int:
    # Imported when the command runs: `--help` and the other commands do not pay for Dagster.
    from orchestration.job_runner import run_job
    from orchestration.log_hygiene import one_line

    progress("guardrails: refreshing provider_guardrail_status and evaluating every provider")
    result = run_job("guardrail_evaluation")
    [materialization] = result.asset_materializations_for_node("guardrail_actions")
    meta = {key: value.value for key, value in materialization.metadata.items()}
    # The plan's summary says what was decided; what was delivered is the line after it.
    summary = one_line(meta["summary"].replace("Warnings sent:", "Warnings planned:"))
    progress(f"run {result.run_id}: {summary}")
    progress(
        f"deliveries: Slack {meta['slack_sent']} sent, {meta['slack_failed']} failed; app API "
        f"{meta['app_api_sent']} sent, {meta['app_api_failed']} failed; "
        f"{meta['deliveries_left_for_next_run']} left for the next run"
    )
    if meta["slack_failed"] or meta["app_api_failed"]:
        progress(f"delivery errors (retried by the next run):\n{meta['delivery_errors']}")
    progress(f"paused providers now: {meta['paused_providers_count']}")
    outcome = {
        "runId": result.run_id,
        **{
            key: meta[key]
            for key in (
                "providers_evaluated",
                "new_windows",
                "criticals",
                "warnings",
                "auto_paused",
                "auto_resumed",
                "warnings_sent",
                "slack_sent",
                "slack_failed",
                "app_api_sent",
                "app_api_failed",
                "paused_providers_count",
                "summary",
            )
        },
    }
    print(json.dumps(outcome))
    failed = int(meta["slack_failed"]) + int(meta["app_api_failed"])
    if failed:
        raise CommandError(
            f"{failed} deliveries failed (Slack {meta['slack_failed']}, app API {meta['app_api_failed']}; "
            f"{meta['slack_sent']} Slack and {meta['app_api_sent']} app API sent); they are retried by the next "
            "run: check the errors above and the Slack/app API settings"
        )
    return 0


def cmd_followup(args: argparse.Namespace) -> int:
    from orchestration.job_runner import run_job

    config = {
        "provider_id": args.provider,
        "action": args.action,
        "actor": args.actor,
        "notes": args.notes,
        "conversion_cursor": args.conversion_cursor,
    }
    result = run_job("guardrail_operator_followup", {"ops": {"record_operator_followup": {"config": config}}})
    outcome = result.output_for_node("record_operator_followup")
    if outcome["status"] == "unchanged":
        progress(outcome["reason"])
    else:
        f = outcome["followup"]
        progress(
            f"recorded {f['action']} by {f['actor']} for {f['providerId']}: status {f['statusAfter']} (id {f['id']})"
        )
    progress(f"deliveries: {outcome['deliveries']}")
    for error in outcome["delivery_errors"]:
        progress(f"  {error} (retried by the next run)")
    print(json.dumps({"runId": result.run_id, **outcome}))
    return 0
