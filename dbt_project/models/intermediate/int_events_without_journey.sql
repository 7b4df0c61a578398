{#- Events whose journey has not reached the warehouse (held: listed in source_row_rejects, counted
    nowhere else). Incremental by journey: the events loaded since the last run, with the held
    events of the journeys they or a journey change touch, are checked again; a journey that
    arrives releases its events. -#}
{{ config(materialized='incremental_by_key', unique_key='journey_id') }}

with candidate_events as (

    select event_id, journey_id, recorded_at
    from {{ new_rows(ref('stg_raw__onboarding_journey_events')) }} as events
    {%- if is_incremental() %}
    union all
    select event_id, journey_id, recorded_at
    from {{ this }}
    where {{ touched() }}
    {%- endif %}

)

select
    candidate_events.event_id,
    candidate_events.journey_id,
    candidate_events.recorded_at
from candidate_events
where not exists (
    select 1
    from {{ ref('int_journey_order_state') }} as journeys
    where journeys.journey_id = candidate_events.journey_id
)
