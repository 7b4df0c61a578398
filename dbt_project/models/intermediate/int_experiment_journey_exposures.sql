{#- One row per (slug, journey) ever exposed to the slug: its exposures counted, the first and the
    last (recorded_at), the variant of the latest one (greatest recorded_at, then event id) and of
    the first one (least recorded_at, then event id), when it first saw another variant than that
    first one (null if never), and the journey's current state (int_journey_order_state: whether
    the journey and its order are in the warehouse, status, order, currency, booked, total,
    points). What the slug marts, the snapshot's per-order model and the experiment arms sum.
    Incremental by journey: a new exposure or a changed journey or order recomputes every slug row
    of the journey from all its exposures; the rows replaced and written go to its changelog, which
    the marts add up (macros/materializations/). -#}
{{ config(
    materialized='incremental_by_key',
    unique_key='journey_id',
    indexes=[{'columns': ['order_id']}]
) }}

with exposures as (

    select slug, journey_id, variant_key, recorded_at, event_id
    from {{ ref('stg_raw__pricing_experiment_exposures') }}
    where {{ touched() }}

),

journey_exposures as (

    select
        slug,
        journey_id,
        count(*) as exposure_count,
        min(recorded_at) as first_exposure_at,
        max(recorded_at) as last_exposure_at,
        {{ first_by('variant_key', 'recorded_at, event_id') }} as first_variant_key,
        {{ last_by('variant_key', 'recorded_at, event_id') }} as latest_variant_key
    from exposures
    group by slug, journey_id

),

other_variants as (

    select
        exposures.slug,
        exposures.journey_id,
        min(exposures.recorded_at) as other_variant_first_at
    from exposures
    inner join journey_exposures
        on exposures.slug = journey_exposures.slug
        and exposures.journey_id = journey_exposures.journey_id
    where exposures.variant_key <> journey_exposures.first_variant_key
    group by exposures.slug, exposures.journey_id

)

select
    cast(journey_exposures.slug as {{ text_type() }}) as slug,
    cast(journey_exposures.journey_id as {{ text_type() }}) as journey_id,
    cast(journey_exposures.exposure_count as bigint) as exposure_count,
    cast(journey_exposures.first_exposure_at as {{ instant_type() }}) as first_exposure_at,
    cast(journey_exposures.last_exposure_at as {{ instant_type() }}) as last_exposure_at,
    cast(journey_exposures.first_variant_key as {{ text_type() }}) as first_variant_key,
    cast(journey_exposures.latest_variant_key as {{ text_type() }}) as latest_variant_key,
    cast(other_variants.other_variant_first_at as {{ instant_type() }}) as other_variant_first_at,
    -- An exposure whose journey is not in the warehouse (a dirty row, or one not loaded yet) is no journey.
    journey_state.journey_id is not null as journey_known,
    cast(journey_state.journey_status as {{ text_type() }}) as journey_status,
    -- The order's columns only once the order is in the warehouse too.
    cast(case when journey_state.order_status is not null then journey_state.order_id end as {{ text_type() }}) as order_id,
    cast(journey_state.order_currency as {{ text_type() }}) as order_currency,
    coalesce(journey_state.is_booked, false) as is_booked,
    journey_state.order_total,
    journey_state.loyalty_projection_points,
    {{ run_clock() }} as changed_at
from journey_exposures
left join other_variants
    on journey_exposures.slug = other_variants.slug
    and journey_exposures.journey_id = other_variants.journey_id
left join {{ ref('int_journey_order_state') }} as journey_state
    on journey_exposures.journey_id = journey_state.journey_id
