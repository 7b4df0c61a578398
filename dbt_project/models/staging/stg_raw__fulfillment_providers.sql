select
    cast(id as {{ text_type() }}) as provider_id,
    cast(name as {{ text_type() }}) as provider_name,
    cast(platform as {{ text_type() }}) as platform,
    created_at
from {{ source('raw', 'fulfillment_providers') }}
