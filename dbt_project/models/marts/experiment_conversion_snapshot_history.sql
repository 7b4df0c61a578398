{#- The conversion snapshot as of each as-of date the pipeline ran, keyed by that date: a re-run on
    the same date replaces that date. full_refresh is off because a rebuild cannot recreate past
    days: a `--full-refresh` (or a change of this SQL) must never wipe the history. -#}
{{ config(materialized='incremental_by_key', unique_key='snapshot_date', full_refresh=false) }}

select
    {{ as_of_date() }} as snapshot_date,
    slug,
    order_currency,
    order_total,
    order_count,
    journey_count,
    loyalty_points,
    last_activity
from {{ ref('experiment_conversion_snapshot') }}
