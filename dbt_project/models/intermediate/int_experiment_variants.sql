{#- One row per (slug, variant) ever exposed: its first exposure, whether any exposure says it is the
    control, and the name of its latest exposure that has one (greatest recorded_at, then event id).
    Each of those only grows with new exposures, so a run merges the exposures loaded since the
    last one into the variant's row instead of reading every exposure of the variant again. -#}
{{ config(materialized='incremental_by_key', unique_key=['slug', 'variant_key']) }}

-- New exposures, and this model's rows of their variants, as one kind of row.
with variant_facts as (

    select
        slug,
        variant_key,
        is_control,
        recorded_at as first_exposure_at,
        variant_name,
        recorded_at as named_at,
        event_id as named_event_id
    from {{ new_rows(ref('stg_raw__pricing_experiment_exposures')) }} as exposures
    {%- if is_incremental() %}
    union all
    select
        slug,
        variant_key,
        is_control,
        first_exposure_at,
        variant_name,
        variant_named_at as named_at,
        variant_named_event_id as named_event_id
    from {{ this }}
    where {{ touched() }}
    {%- endif %}

),

variants as (

    select
        slug,
        variant_key,
        bool_or(is_control) as is_control,
        min(first_exposure_at) as first_exposure_at
    from variant_facts
    group by slug, variant_key

),

latest_names as (

    select
        slug,
        variant_key,
        {{ last_by('variant_name', 'named_at, named_event_id') }} as variant_name,
        max(named_at) as variant_named_at,
        {{ last_by('named_event_id', 'named_at, named_event_id') }} as variant_named_event_id
    from variant_facts
    where variant_name is not null
    group by slug, variant_key

)

select
    cast(variants.slug as {{ text_type() }}) as slug,
    cast(variants.variant_key as {{ text_type() }}) as variant_key,
    cast(variants.is_control as boolean) as is_control,
    cast(variants.first_exposure_at as {{ instant_type() }}) as first_exposure_at,
    cast(latest_names.variant_name as {{ text_type() }}) as variant_name,
    cast(latest_names.variant_named_at as {{ instant_type() }}) as variant_named_at,
    cast(latest_names.variant_named_event_id as bigint) as variant_named_event_id,
    {{ run_clock() }} as changed_at
from variants
left join latest_names
    on variants.slug = latest_names.slug
    and variants.variant_key = latest_names.variant_key
