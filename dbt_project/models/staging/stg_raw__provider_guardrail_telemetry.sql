{#- Sound telemetry windows only: a window ending before it starts or with a negative count never
    becomes a provider's latest window (listed in source_row_rejects). -#}
select
    id as telemetry_id,
    cast(provider_id as {{ text_type() }}) as provider_id,
    cast(experiment_slug as {{ text_type() }}) as experiment_slug,
    cast(variant_key as {{ text_type() }}) as variant_key,
    window_start,
    window_end,
    guardrail_checks,
    guardrail_failures,
    replay_total,
    replay_failures,
    recorded_at
from {{ source('raw', 'provider_guardrail_telemetry') }} as telemetry
where {{ telemetry_reject_reason('telemetry') }} is null
