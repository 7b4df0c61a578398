{#- Source rows kept out of the marts (or held), one row each with a stable reason code. Read by
    people and by the refresh's run metadata (counts per table and reason); never stops a run. -#}
{{ config(materialized='table') }}

with telemetry_rejects as (

    select
        'provider_guardrail_telemetry' as source_table,
        cast(telemetry.id as {{ text_type() }}) as row_id,
        {{ telemetry_reject_reason('telemetry') }} as reason,
        telemetry.recorded_at as row_instant
    from {{ source('raw', 'provider_guardrail_telemetry') }} as telemetry
    where {{ telemetry_reject_reason('telemetry') }} is not null

),

order_rejects as (

    select
        'orders' as source_table,
        cast(orders.id as {{ text_type() }}) as row_id,
        {{ order_reject_reason('orders') }} as reason,
        orders.updated_at as row_instant
    from {{ source('raw', 'orders') }} as orders
    where {{ order_reject_reason('orders') }} is not null

),

-- Held, not dropped: the segment row stays (its journey may still commit and be fetched by key),
-- but with no journey it has no status, order or currency to count.
events_without_journey as (

    select
        'onboarding_journey_events' as source_table,
        cast(events.event_id as {{ text_type() }}) as row_id,
        'journey_missing' as reason,
        events.recorded_at as row_instant
    from {{ ref('int_events_without_journey') }} as events

)

select * from telemetry_rejects
union all
select * from order_rejects
union all
select * from events_without_journey
