select
    cast(id as text) as provider_id,
    cast(name as text) as provider_name,
    cast(platform as text) as platform,
    created_at
from {{ source('raw', 'fulfillment_providers') }}
