{#- One row per variant ever exposed. journey_count counts journeys whose CURRENT variant for the
    slug is this one: the variant of their latest exposure (greatest recorded_at, then event id). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched('slug', touched_slugs()) }}",
    post_hook=["{{ clear_watermark() }}", "{{ record_watermark(upstream='int_experiment_journey_exposures') }}"]
) }}
-- depends_on: {{ ref('int_journey_order_state') }}
with exposures as (

    select * from {{ ref('stg_raw__pricing_experiment_exposures') }}
    {%- if is_incremental() %}
    where slug in ({{ touched_slugs() }})
    {%- endif %}

),

journeys as (

    select * from {{ ref('stg_raw__onboarding_journeys') }}

),

-- Each journey's current variant for the slug, kept per journey by the intermediate model.
current_variant_of_journey as (

    select slug, journey_id, latest_variant_key as variant_key
    from {{ ref('int_experiment_journey_exposures') }}
    {%- if is_incremental() %}
    where slug in ({{ touched_slugs() }})
    {%- endif %}

),

journeys_per_current_variant as (

    select
        current_variant_of_journey.slug,
        current_variant_of_journey.variant_key,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is
        -- no journey: it counts nowhere.
        count(journeys.journey_id) as journey_count,
        count(case when journeys.journey_status = 'active' then 1 end) as active_journeys,
        count(case when journeys.journey_status = 'stalled' then 1 end) as stalled_journeys,
        count(case when journeys.journey_status = 'completed' then 1 end) as completed_journeys
    from current_variant_of_journey
    left join journeys
        on current_variant_of_journey.journey_id = journeys.journey_id
    group by current_variant_of_journey.slug, current_variant_of_journey.variant_key

),

variants as (

    select
        slug,
        variant_key,
        bool_or(is_control) as is_control
    from exposures
    group by slug, variant_key

),

latest_variant_name as (

    select
        slug,
        variant_key,
        {{ last_by('variant_name', 'recorded_at, event_id') }} as variant_name
    from exposures
    where variant_name is not null
    group by slug, variant_key

)

select
    cast(variants.slug as text) as slug,
    cast(variants.variant_key as text) as variant_key,
    cast(latest_variant_name.variant_name as text) as variant_name,
    cast(variants.is_control as boolean) as is_control,
    cast(coalesce(journeys_per_current_variant.journey_count, 0) as bigint) as journey_count,
    cast(coalesce(journeys_per_current_variant.active_journeys, 0) as bigint) as active_journeys,
    cast(coalesce(journeys_per_current_variant.stalled_journeys, 0) as bigint) as stalled_journeys,
    cast(coalesce(journeys_per_current_variant.completed_journeys, 0) as bigint) as completed_journeys
from variants
left join latest_variant_name
    on variants.slug = latest_variant_name.slug
    and variants.variant_key = latest_variant_name.variant_key
left join journeys_per_current_variant
    on variants.slug = journeys_per_current_variant.slug
    and variants.variant_key = journeys_per_current_variant.variant_key
