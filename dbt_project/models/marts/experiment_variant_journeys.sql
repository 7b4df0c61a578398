{#- One row per variant ever exposed. journey_count counts journeys whose CURRENT variant for the
    slug is this one: the variant of their latest exposure (greatest recorded_at, then event id),
    split by the journey's current status.
    Incremental by slug, as signed sums: the counts move by the per-journey rows that changed since
    the last run (a journey whose latest variant or status changed leaves its old row, -1, for its
    new one, +1); the variants come from the per-variant model. -#}
{{ config(materialized='incremental_by_key', unique_key='slug') }}

with journey_changes as (

    select * from {{ changes(ref('int_experiment_journey_exposures')) }} as journey_changes

),

-- What the counts moved by. An exposure whose journey is not in the warehouse (a dirty row, in
-- source_row_rejects) is no journey: it counts nowhere.
count_changes as (

    select
        slug,
        latest_variant_key as variant_key,
        sum(case when journey_known then change_sign else 0 end) as journey_count,
        sum(case when journey_status = 'active' then change_sign else 0 end) as active_journeys,
        sum(case when journey_status = 'stalled' then change_sign else 0 end) as stalled_journeys,
        sum(case when journey_status = 'completed' then change_sign else 0 end) as completed_journeys
    from journey_changes
    group by slug, latest_variant_key

),

journeys_per_current_variant as (

    select
        slug,
        variant_key,
        sum(journey_count) as journey_count,
        sum(active_journeys) as active_journeys,
        sum(stalled_journeys) as stalled_journeys,
        sum(completed_journeys) as completed_journeys
    from (
        select * from count_changes
        {%- if is_incremental() %}
        union all
        select
            built.slug,
            built.variant_key,
            built.journey_count,
            built.active_journeys,
            built.stalled_journeys,
            built.completed_journeys
        from {{ this }} as built
        where {{ touched('built.slug') }}
        {%- endif %}
    ) as counts
    group by slug, variant_key

),

variants as (

    select * from {{ ref('int_experiment_variants') }}
    where {{ touched() }}

)

select
    cast(variants.slug as {{ text_type() }}) as slug,
    cast(variants.variant_key as {{ text_type() }}) as variant_key,
    cast(variants.variant_name as {{ text_type() }}) as variant_name,
    cast(variants.is_control as boolean) as is_control,
    cast(coalesce(journeys_per_current_variant.journey_count, 0) as bigint) as journey_count,
    cast(coalesce(journeys_per_current_variant.active_journeys, 0) as bigint) as active_journeys,
    cast(coalesce(journeys_per_current_variant.stalled_journeys, 0) as bigint) as stalled_journeys,
    cast(coalesce(journeys_per_current_variant.completed_journeys, 0) as bigint) as completed_journeys
from variants
left join journeys_per_current_variant
    on variants.slug = journeys_per_current_variant.slug
    and variants.variant_key = journeys_per_current_variant.variant_key
