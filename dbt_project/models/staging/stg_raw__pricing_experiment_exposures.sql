{#- One row per exposure: a valid (event, slug) pair of a pricing_experiment_segment event, with its
    UTC day (activity_date: the day it happened, whenever it arrived). Incremental by event: the
    exposures of the events parsed since the last run. -#}
{{ config(
    materialized='incremental_by_key',
    unique_key='event_id',
    indexes=[{'columns': ['journey_id']}]
) }}

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
    cast({{ utc_date('recorded_at') }} as date) as activity_date,
    ingested_at,
    loaded_at
from {{ new_rows(ref('stg_raw__pricing_experiment_entries')) }} as entries
where reason is null
