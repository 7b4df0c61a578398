{#- Orders whose money can be counted: the currency upper-cased (`usd` is USD), orders with a
    currency that is not a code or a negative total left out (listed in source_row_rejects). -#}
select
    cast(id as {{ text_type() }}) as order_id,
    cast(order_number as {{ text_type() }}) as order_number,
    cast(provider_id as {{ text_type() }}) as provider_id,
    cast(status as {{ text_type() }}) as order_status,
    total as order_total,
    -- char(3) on Postgres: text so both engines compare and group it the same way.
    {{ normalised_currency('orders') }} as order_currency,
    loyalty_projection_points,
    cast(platform as {{ text_type() }}) as platform,
    cast(channel as {{ text_type() }}) as channel,
    created_at,
    updated_at
from {{ source('raw', 'orders') }} as orders
where {{ order_reject_reason('orders') }} is null
