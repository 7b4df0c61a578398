{#- Entries of pricing_experiment_segment events that are not exposures, with the reason code.
    Read by people and by the refresh's run metadata (counts per reason); never stops a run.
    Incremental by event, as the parser. -#}
{{ config(materialized='incremental_by_key', unique_key='event_id') }}

select
    event_id,
    journey_id,
    entry_index,
    entry,
    reason,
    recorded_at,
    ingested_at,
    loaded_at
from {{ new_rows(ref('stg_raw__pricing_experiment_entries')) }} as entries
where reason is not null
