{#- One row per slug and UTC day, from the slug's first exposure day through the as-of date (var
    as_of_date), zeros included. Exposures after the as-of date are left out; a late event counts
    on the day it happened (recorded_at), not the day it arrived.
    Incremental by (slug, day): the days of the new exposures (a late event's own old day) and of
    the exposures of journeys that changed (a journey arriving makes its exposures count as one),
    plus the zero days a slug's new first day adds; built whole when the as-of date moves. -#}
{{ config(materialized='incremental_by_key', unique_key=['slug', 'activity_date']) }}

with exposure_days as (

    select slug, journey_id, activity_date
    from {{ ref('stg_raw__pricing_experiment_exposures') }}
    where activity_date <= {{ as_of_date() }}
        and {{ touched() }}

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
    group by slug, activity_date, journey_id

),

daily_counts as (

    select
        journey_days.slug,
        journey_days.activity_date,
        sum(journey_days.exposure_count) as exposure_count,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
        count(journey_state.journey_id) as journey_count
    from journey_days
    left join {{ ref('int_journey_order_state') }} as journey_state
        on journey_days.journey_id = journey_state.journey_id
    group by journey_days.slug, journey_days.activity_date

),

-- A slug's first day: its earliest recounted day or the first day it already has.
slug_first_days as (

    select slug, min(activity_date) as first_activity_date
    from (
        select slug, activity_date from daily_counts
        {%- if is_incremental() %}
        union all
        select built_days.slug, min(built_days.activity_date) as activity_date
        from {{ this }} as built_days
        group by built_days.slug
        {%- endif %}
    ) as known_days
    group by slug

),

spine as (

    select
        slug_first_days.slug,
        days.activity_date
    from slug_first_days
    cross join {{ date_spine('slug_first_days.first_activity_date', as_of_date(), 'days', 'activity_date') }}

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
{%- if is_incremental() %}
-- The recounted days, and the days the slug did not have yet.
where {{ touched(['spine.slug', 'spine.activity_date']) }}
    or not exists (
        select 1 from {{ this }} as existing_days
        where existing_days.slug = spine.slug and existing_days.activity_date = spine.activity_date
    )
{%- endif %}
