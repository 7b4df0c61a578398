{#- One row per exposure (event_id, slug) with the CURRENT journey and order values; an exposure
    whose journey or order has not reached the warehouse yet keeps its row, with nulls. -#}
{#- The export job reads keyset windows in (loaded_at, event_id, slug) order: on Postgres an index
    turns each window into a range scan. DuckDB's zone maps already skip blocks on loaded_at. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched_exposures() }}",
    post_hook=["{{ clear_watermark() }}", "{{ record_watermark() }}"],
    indexes=([{'columns': ['loaded_at', 'event_id']}] if target.type == 'postgres' else [])
) }}
-- depends_on: {{ ref('int_journey_order_state') }}
with exposures as (

    select * from {{ ref('stg_raw__pricing_experiment_exposures') }} as exposures
    {%- if is_incremental() %}
    where {{ exposure_touched('exposures.') }}
    {%- endif %}

),

journeys as (

    select * from {{ ref('stg_raw__onboarding_journeys') }}

),

orders as (

    select * from {{ ref('stg_raw__orders') }}

)

select
    cast(exposures.event_id as bigint) as event_id,
    cast(exposures.journey_id as text) as journey_id,
    cast(journeys.order_id as text) as order_id,
    cast(orders.order_number as text) as order_number,
    cast(exposures.slug as text) as slug,
    cast(exposures.variant_key as text) as variant_key,
    cast(exposures.variant_name as text) as variant_name,
    cast(exposures.is_control as boolean) as is_control,
    cast(exposures.assignment_strategy as text) as assignment_strategy,
    cast(exposures.feature_flag_key as text) as feature_flag_key,
    cast(exposures.surface as text) as surface,
    cast(journeys.journey_status as text) as journey_status,
    cast(orders.order_status as text) as order_status,
    cast(orders.order_total as numeric(12, 2)) as order_total,
    cast(orders.order_currency as text) as order_currency,
    cast(orders.loyalty_projection_points as integer) as loyalty_projection_points,
    cast(exposures.recorded_at as timestamptz) as recorded_at,
    cast(exposures.ingested_at as timestamptz) as ingested_at,
    cast(exposures.loaded_at as timestamptz) as loaded_at
from exposures
left join journeys
    on exposures.journey_id = journeys.journey_id
left join orders
    on journeys.order_id = orders.order_id
-- Stored in the export's read order, so its keyset windows skip whole blocks (DuckDB zone maps).
order by exposures.loaded_at, exposures.event_id, exposures.slug
