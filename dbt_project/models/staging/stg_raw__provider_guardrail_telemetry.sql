select
    id as telemetry_id,
    cast(provider_id as text) as provider_id,
    cast(experiment_slug as text) as experiment_slug,
    cast(variant_key as text) as variant_key,
    window_start,
    window_end,
    guardrail_checks,
    guardrail_failures,
    replay_total,
    replay_failures,
    recorded_at
from {{ source('raw', 'provider_guardrail_telemetry') }}
