{#- One row per slug ever exposed. Incremental by slug, from the per-journey and per-variant
    models: the slugs with a new exposure or a changed journey. -#}
{{ config(materialized='incremental_by_key', unique_key='slug') }}

-- Each journey's exposures per slug, counted once per journey by the intermediate model.
with journey_exposures as (

    select * from {{ ref('int_experiment_journey_exposures') }}
    where {{ touched() }}

),

slug_variants as (

    select slug, count(*) as variant_count
    from {{ ref('int_experiment_variants') }}
    where {{ touched() }}
    group by slug

),

journey_totals as (

    select
        journey_exposures.slug,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
        count(journey_state.journey_id) as journey_count,
        sum(journey_exposures.exposure_count) as exposure_count,
        min(journey_exposures.first_exposure_at) as first_exposure_at,
        max(journey_exposures.last_exposure_at) as last_exposure_at
    from journey_exposures
    left join {{ ref('int_journey_order_state') }} as journey_state
        on journey_exposures.journey_id = journey_state.journey_id
    group by journey_exposures.slug

)

select
    cast(journey_totals.slug as text) as slug,
    cast(journey_totals.journey_count as bigint) as journey_count,
    cast(slug_variants.variant_count as bigint) as variant_count,
    cast(journey_totals.exposure_count as bigint) as exposure_count,
    cast(journey_totals.first_exposure_at as timestamptz) as first_exposure_at,
    cast(journey_totals.last_exposure_at as timestamptz) as last_exposure_at
from journey_totals
inner join slug_variants
    on journey_totals.slug = slug_variants.slug
