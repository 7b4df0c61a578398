{#- Entries of pricing_experiment_segment events that are not exposures, with the reason code.
    Read by people and by the refresh's run metadata (counts per reason); never stops a run.
    Incremental on loaded_at, as the parser. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

select
    event_id,
    journey_id,
    entry_index,
    entry,
    reason,
    recorded_at,
    ingested_at,
    loaded_at
from {{ ref('int_pricing_experiment_entries') }}
where reason is not null
{%- if is_incremental() %}
    and {{ loaded_since_last_run('loaded_at') }}
{%- endif %}
