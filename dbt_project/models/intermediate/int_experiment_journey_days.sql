{#- One row per (slug, UTC day, journey) with an exposure: the journey's exposures to the slug that
    day, and whether the journey is in the warehouse (int_journey_order_state; an exposure whose
    journey is not is no journey). What the daily assignments add up, from its changelog.
    Incremental by journey: a new exposure (a late one included: it has a row of its own old day)
    or a journey arriving recomputes the journey's rows. -#}
{{ config(materialized='incremental_by_key', unique_key='journey_id') }}

with exposures as (

    select slug, activity_date, journey_id
    from {{ ref('stg_raw__pricing_experiment_exposures') }}
    where {{ touched() }}

)

select
    cast(exposures.slug as {{ text_type() }}) as slug,
    cast(exposures.activity_date as date) as activity_date,
    cast(exposures.journey_id as {{ text_type() }}) as journey_id,
    cast(count(*) as bigint) as exposure_count,
    bool_or(journey_state.journey_id is not null) as journey_known,
    {{ run_clock() }} as changed_at
from exposures
left join {{ ref('int_journey_order_state') }} as journey_state
    on exposures.journey_id = journey_state.journey_id
group by exposures.slug, exposures.activity_date, exposures.journey_id
