{#- One row per exposure (event_id, slug) with the CURRENT journey and order values; an exposure
    whose journey or order has not reached the warehouse yet keeps its row, with nulls.
    Incremental by exposure: the new exposures and those of the journeys whose journey or order
    changed. -#}
{#- The export job reads keyset windows in (loaded_at, event_id, slug) order: on Postgres an index
    turns each window into a range scan. DuckDB's zone maps already skip blocks on loaded_at. -#}
{{ config(
    materialized='incremental_by_key',
    unique_key='event_id',
    indexes=[{'columns': ['loaded_at', 'event_id']}]
) }}

with exposures as (

    select * from {{ ref('stg_raw__pricing_experiment_exposures') }}
    where {{ touched() }}

),

journey_state as (

    select * from {{ ref('int_journey_order_state') }}

)

select
    cast(exposures.event_id as bigint) as event_id,
    cast(exposures.journey_id as {{ text_type() }}) as journey_id,
    cast(journey_state.order_id as {{ text_type() }}) as order_id,
    cast(journey_state.order_number as {{ text_type() }}) as order_number,
    cast(exposures.slug as {{ text_type() }}) as slug,
    cast(exposures.variant_key as {{ text_type() }}) as variant_key,
    cast(exposures.variant_name as {{ text_type() }}) as variant_name,
    cast(exposures.is_control as boolean) as is_control,
    cast(exposures.assignment_strategy as {{ text_type() }}) as assignment_strategy,
    cast(exposures.feature_flag_key as {{ text_type() }}) as feature_flag_key,
    cast(exposures.surface as {{ text_type() }}) as surface,
    cast(journey_state.journey_status as {{ text_type() }}) as journey_status,
    cast(journey_state.order_status as {{ text_type() }}) as order_status,
    cast(journey_state.order_total as numeric(12, 2)) as order_total,
    cast(journey_state.order_currency as {{ text_type() }}) as order_currency,
    cast(journey_state.loyalty_projection_points as integer) as loyalty_projection_points,
    cast(exposures.recorded_at as {{ instant_type() }}) as recorded_at,
    cast(exposures.ingested_at as {{ instant_type() }}) as ingested_at,
    cast(exposures.loaded_at as {{ instant_type() }}) as loaded_at
from exposures
left join journey_state
    on exposures.journey_id = journey_state.journey_id
-- Stored in the export's read order, so its keyset windows skip whole blocks (DuckDB zone maps).
order by exposures.loaded_at, exposures.event_id, exposures.slug
