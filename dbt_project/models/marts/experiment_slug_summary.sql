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

-- Each journey's exposures per slug, counted once per journey by the intermediate model.
journey_exposures as (

    select * from {{ ref('int_experiment_journey_exposures') }}
    {%- if is_incremental() %}
    where slug in ({{ touched_slugs() }})
    {%- endif %}

),

slug_variants as (

    select slug, count(distinct variant_key) as variant_count
    from exposures
    group by slug

),

journey_totals as (

    select
        journey_exposures.slug,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
        count(journeys.journey_id) as journey_count,
        sum(journey_exposures.exposure_count) as exposure_count,
        min(journey_exposures.first_exposure_at) as first_exposure_at,
        max(journey_exposures.last_exposure_at) as last_exposure_at
    from journey_exposures
    left join {{ ref('stg_raw__onboarding_journeys') }} as journeys
        on journey_exposures.journey_id = journeys.journey_id
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
