{#- One row per variant ever exposed. journey_count counts journeys whose CURRENT variant for the
    slug is this one: the variant of their latest exposure (greatest recorded_at, then event id),
    split by the journey's current status. Incremental by slug, from the per-journey and
    per-variant models: the slugs with a new exposure or a changed journey. -#}
{{ config(materialized='incremental_by_key', unique_key='slug') }}

with variants as (

    select * from {{ ref('int_experiment_variants') }}
    where {{ touched() }}

),

-- Each journey's current variant for the slug, kept per journey by the intermediate model.
current_variant_of_journey as (

    select slug, journey_id, latest_variant_key as variant_key
    from {{ ref('int_experiment_journey_exposures') }}
    where {{ touched() }}

),

journeys_per_current_variant as (

    select
        current_variant_of_journey.slug,
        current_variant_of_journey.variant_key,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is
        -- no journey: it counts nowhere.
        count(journey_state.journey_id) as journey_count,
        count(case when journey_state.journey_status = 'active' then 1 end) as active_journeys,
        count(case when journey_state.journey_status = 'stalled' then 1 end) as stalled_journeys,
        count(case when journey_state.journey_status = 'completed' then 1 end) as completed_journeys
    from current_variant_of_journey
    left join {{ ref('int_journey_order_state') }} as journey_state
        on current_variant_of_journey.journey_id = journey_state.journey_id
    group by current_variant_of_journey.slug, current_variant_of_journey.variant_key

)

select
    cast(variants.slug as text) as slug,
    cast(variants.variant_key as text) as variant_key,
    cast(variants.variant_name as text) as variant_name,
    cast(variants.is_control as boolean) as is_control,
    cast(coalesce(journeys_per_current_variant.journey_count, 0) as bigint) as journey_count,
    cast(coalesce(journeys_per_current_variant.active_journeys, 0) as bigint) as active_journeys,
    cast(coalesce(journeys_per_current_variant.stalled_journeys, 0) as bigint) as stalled_journeys,
    cast(coalesce(journeys_per_current_variant.completed_journeys, 0) as bigint) as completed_journeys
from variants
left join journeys_per_current_variant
    on variants.slug = journeys_per_current_variant.slug
    and variants.variant_key = journeys_per_current_variant.variant_key
