{#- One row per exposure: a valid (event, slug) pair of a pricing_experiment_segment event. -#}
select
    event_id,
    journey_id,
    slug,
    variant_key,
    variant_name,
    is_control,
    assignment_strategy,
    feature_flag_key,
    surface,
    recorded_at,
    ingested_at,
    loaded_at
from {{ ref('stg_raw__pricing_experiment_entries') }}
where reason is null
