{#- One row per slug and UTC day, from the slug's first exposure day through the as-of date (var
    as_of_date), zeros included. Exposures after the as-of date are left out; a late event counts
    on the day it happened (recorded_at), not the day it arrived. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched('slug', touched_slugs(depends_on_as_of_date=true)) }}",
    post_hook=["{{ clear_watermark() }}", "{{ record_watermark() }}"]
) }}
-- depends_on: {{ ref('int_journey_order_state') }}
with exposure_days as (

    select
        slug,
        journey_id,
        {{ utc_date('recorded_at') }} as activity_date
    from {{ ref('stg_raw__pricing_experiment_exposures') }}
    {%- if is_incremental() %}
    where slug in ({{ touched_slugs(depends_on_as_of_date=true) }})
    {%- endif %}

),

slug_first_days as (

    select slug, min(activity_date) as first_activity_date
    from exposure_days
    group by slug

),

spine as (

    select
        slug_first_days.slug,
        days.activity_date
    from slug_first_days
    cross join {{ date_spine('slug_first_days.first_activity_date', as_of_date(), 'days', 'activity_date') }}

),

-- Each journey's exposures per slug and day first (one row each), then the journeys: a count of
-- rows instead of a count(distinct) over every exposure.
journey_days as (

    select
        slug,
        activity_date,
        journey_id,
        count(*) as exposure_count
    from exposure_days
    where activity_date <= {{ as_of_date() }}
    group by slug, activity_date, journey_id

),

daily_counts as (

    select
        journey_days.slug,
        journey_days.activity_date,
        sum(journey_days.exposure_count) as exposure_count,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
        count(journeys.journey_id) as journey_count
    from journey_days
    left join {{ ref('stg_raw__onboarding_journeys') }} as journeys
        on journey_days.journey_id = journeys.journey_id
    group by journey_days.slug, journey_days.activity_date

)

select
    cast(spine.slug as text) as slug,
    cast(spine.activity_date as date) as activity_date,
    cast(coalesce(daily_counts.exposure_count, 0) as bigint) as exposure_count,
    cast(coalesce(daily_counts.journey_count, 0) as bigint) as journey_count
from spine
left join daily_counts
    on spine.slug = daily_counts.slug
    and spine.activity_date = daily_counts.activity_date
