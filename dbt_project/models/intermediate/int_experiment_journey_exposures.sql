{#- One row per (slug, journey) ever exposed to the slug: its exposures counted, the first and the
    last (recorded_at), the variant of the latest one (greatest recorded_at, then event id) and of
    the first one (least recorded_at, then event id), and when it first saw another variant than
    that first one (null if never). The slug marts count journeys from here instead of
    re-aggregating every exposure of a slug; the experiment arms take the as-of date to it.
    Only a new exposure of a journey changes its rows (its journey and order state are the marts'
    business): incremental by journey, a run recomputes every slug row of the journeys with a new
    exposure from all their exposures. -#}
{{ config(materialized='incremental_by_key', unique_key='journey_id') }}

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
    cast(journey_exposures.slug as text) as slug,
    cast(journey_exposures.journey_id as text) as journey_id,
    cast(journey_exposures.exposure_count as bigint) as exposure_count,
    cast(journey_exposures.first_exposure_at as timestamptz) as first_exposure_at,
    cast(journey_exposures.last_exposure_at as timestamptz) as last_exposure_at,
    cast(journey_exposures.first_variant_key as text) as first_variant_key,
    cast(journey_exposures.latest_variant_key as text) as latest_variant_key,
    cast(other_variants.other_variant_first_at as timestamptz) as other_variant_first_at,
    {{ run_clock() }} as changed_at
from journey_exposures
left join other_variants
    on journey_exposures.slug = other_variants.slug
    and journey_exposures.journey_id = other_variants.journey_id
