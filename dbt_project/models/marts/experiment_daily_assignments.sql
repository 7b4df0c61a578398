{#- One row per slug and UTC day, from the slug's first exposure day through the as-of date (var
    as_of_date), zeros included. Exposures after the as-of date are left out; a late event counts
    on the day it happened (recorded_at), not the day it arrived.
    Incremental by (slug, day), as signed sums: the counts move by the per-(slug, day, journey)
    rows that changed since the last run (a late event's own old day; a journey arriving counts on
    every day it was exposed), plus the zero days a slug's new first day adds; built whole when the
    as-of date moves. -#}
{{ config(materialized='incremental_by_key', unique_key=['slug', 'activity_date']) }}

with day_changes as (

    select * from {{ changes(ref('int_experiment_journey_days')) }} as day_changes
    where activity_date <= {{ as_of_date() }}

),

-- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
count_changes as (

    select
        slug,
        activity_date,
        sum(change_sign * exposure_count) as exposure_count,
        sum(case when journey_known then change_sign else 0 end) as journey_count
    from day_changes
    group by slug, activity_date

),

daily_counts as (

    select
        slug,
        activity_date,
        sum(exposure_count) as exposure_count,
        sum(journey_count) as journey_count
    from (
        select * from count_changes
        {%- if is_incremental() %}
        union all
        select built.slug, built.activity_date, built.exposure_count, built.journey_count
        from {{ this }} as built
        where {{ touched(['built.slug', 'built.activity_date']) }}
        {%- endif %}
    ) as counts
    group by slug, activity_date

),

-- A slug's first day: its earliest recounted day or the first day it already has.
slug_first_days as (

    select slug, min(activity_date) as first_activity_date
    from (
        select slug, activity_date
        from daily_counts
        where exposure_count > 0
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
    cast(spine.slug as {{ text_type() }}) as slug,
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
