{#- One row per exposure: a valid (event, slug) pair of a pricing_experiment_segment event.
    Incremental on loaded_at: the exposures of the events parsed since the last run. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}
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
from {{ ref('int_pricing_experiment_entries') }}
where reason is null
{%- if is_incremental() %}
    and {{ loaded_since_last_run('loaded_at') }}
{%- endif %}
