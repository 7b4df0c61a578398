{#- Entries of pricing_experiment_segment events that are not exposures, with the reason code.
    Read by people and by the refresh's run metadata (counts per reason); never stops a run. -#}
{{ config(materialized='table') }}

select
    event_id,
    journey_id,
    entry_index,
    entry,
    reason,
    recorded_at,
    ingested_at,
    loaded_at
from {{ ref('stg_raw__pricing_experiment_entries') }}
where reason is not null
