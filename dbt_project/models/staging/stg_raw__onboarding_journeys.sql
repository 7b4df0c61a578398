select
    cast(id as text) as journey_id,
    cast(order_id as text) as order_id,
    cast(status as text) as journey_status,
    progress_pct,
    cast(referral_risk as text) as referral_risk,
    created_at,
    updated_at
from {{ source('raw', 'onboarding_journeys') }}
