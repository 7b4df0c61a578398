select
    id as event_id,
    cast(journey_id as {{ text_type() }}) as journey_id,
    cast(event_type as {{ text_type() }}) as event_type,
    -- The engine's JSON (DuckDB json, Postgres jsonb); Spark's raw JSON text, read as a VARIANT
    -- where it is parsed (stg_raw__pricing_experiment_entries).
    payload,
    recorded_at,
    ingested_at,
    loaded_at
from {{ source('raw', 'onboarding_journey_events') }}
