select
    cast(id as {{ text_type() }}) as journey_id,
    cast(order_id as {{ text_type() }}) as order_id,
    cast(status as {{ text_type() }}) as journey_status,
    progress_pct,
    cast(referral_risk as {{ text_type() }}) as referral_risk,
    created_at,
    updated_at
from {{ source('raw', 'onboarding_journeys') }}
