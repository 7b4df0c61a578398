{#- Each provider's latest telemetry window (greatest window_end, then greatest id) and its
    severity by the one rule in macros/guardrail_severity.sql. -#}
with windows_by_recency as (

    select
        telemetry.*,
        row_number() over (
            partition by provider_id
            order by window_end desc, telemetry_id desc
        ) as recency_rank
    from {{ ref('stg_raw__provider_guardrail_telemetry') }} as telemetry

),

latest_windows as (

    select * from windows_by_recency
    where recency_rank = 1

)

select
    cast(latest_windows.provider_id as {{ text_type() }}) as provider_id,
    cast(providers.provider_name as {{ text_type() }}) as provider_name,
    cast(providers.platform as {{ text_type() }}) as platform,
    cast(latest_windows.experiment_slug as {{ text_type() }}) as experiment_slug,
    cast(latest_windows.variant_key as {{ text_type() }}) as variant_key,
    cast(latest_windows.window_start as {{ instant_type() }}) as window_start,
    cast(latest_windows.window_end as {{ instant_type() }}) as window_end,
    cast(latest_windows.guardrail_failures as integer) as guardrail_failures,
    cast(latest_windows.replay_failures as integer) as replay_failures,
    cast(latest_windows.replay_total as integer) as replay_total,
    cast({{ guardrail_severity('latest_windows.guardrail_failures', 'latest_windows.replay_failures') }} as {{ text_type() }}) as severity,
    cast({{ guardrail_reasons('latest_windows.guardrail_failures', 'latest_windows.replay_failures') }} as {{ text_type() }}) as reasons
from latest_windows
left join {{ ref('stg_raw__fulfillment_providers') }} as providers
    on latest_windows.provider_id = providers.provider_id
