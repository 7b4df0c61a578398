{#- One row per slug ever exposed.
    Incremental by slug, as signed sums: the journey and exposure counts move by the per-journey
    rows that changed since the last run; a slug's first and last exposure only move outwards (a
    journey never leaves a slug, its exposures only add up); the variants come from the
    per-variant model. -#}
{{ config(materialized='incremental_by_key', unique_key='slug') }}

with journey_changes as (

    select * from {{ changes(ref('int_experiment_journey_exposures')) }} as journey_changes

),

slug_changes as (

    select
        slug,
        -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
        sum(case when journey_known then change_sign else 0 end) as journey_count,
        sum(change_sign * exposure_count) as exposure_count,
        min(case when change_sign > 0 then first_exposure_at end) as first_exposure_at,
        max(case when change_sign > 0 then last_exposure_at end) as last_exposure_at
    from journey_changes
    group by slug

),

journey_totals as (

    select
        slug,
        sum(journey_count) as journey_count,
        sum(exposure_count) as exposure_count,
        min(first_exposure_at) as first_exposure_at,
        max(last_exposure_at) as last_exposure_at
    from (
        select * from slug_changes
        {%- if is_incremental() %}
        union all
        select
            built.slug,
            built.journey_count,
            built.exposure_count,
            built.first_exposure_at,
            built.last_exposure_at
        from {{ this }} as built
        where {{ touched('built.slug') }}
        {%- endif %}
    ) as totals
    group by slug

),

slug_variants as (

    select slug, count(*) as variant_count
    from {{ ref('int_experiment_variants') }}
    where {{ touched() }}
    group by slug

)

select
    cast(journey_totals.slug as {{ text_type() }}) as slug,
    cast(journey_totals.journey_count as bigint) as journey_count,
    cast(slug_variants.variant_count as bigint) as variant_count,
    cast(journey_totals.exposure_count as bigint) as exposure_count,
    cast(journey_totals.first_exposure_at as {{ instant_type() }}) as first_exposure_at,
    cast(journey_totals.last_exposure_at as {{ instant_type() }}) as last_exposure_at
from journey_totals
inner join slug_variants
    on journey_totals.slug = slug_variants.slug
