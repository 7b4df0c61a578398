select
    id as event_id,
    cast(journey_id as text) as journey_id,
    cast(event_type as text) as event_type,
    payload,
    recorded_at,
    ingested_at,
    loaded_at
from {{ source('raw', 'onboarding_journey_events') }}
