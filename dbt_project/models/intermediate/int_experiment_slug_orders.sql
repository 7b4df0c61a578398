{#- One row per (slug, order) whose order is in the warehouse and was reached by a journey exposed to
    the slug: how many of those journeys, the latest of their exposures to the slug, and the order's
    currency, booked state (int_journey_order_state's rule), total and points. An order reached by
    several journeys (or exposures) is one row: what the conversion snapshot sums over distinct
    orders. Incremental by order: the orders of the journeys whose per-journey rows changed, before
    and after the change (an order a journey leaves is recounted too). -#}
{{ config(
    materialized='incremental_by_key',
    unique_key='order_id',
    indexes=[{'columns': ['slug', 'order_currency', 'last_activity']}]
) }}

select
    cast(slug as {{ text_type() }}) as slug,
    cast(order_id as {{ text_type() }}) as order_id,
    cast(order_currency as {{ text_type() }}) as order_currency,
    bool_or(is_booked) as is_booked,
    cast(max(order_total) as numeric(12, 2)) as order_total,
    cast(max(loyalty_projection_points) as integer) as loyalty_projection_points,
    cast(count(*) as bigint) as journey_count,
    cast(max(last_exposure_at) as {{ instant_type() }}) as last_activity,
    {{ run_clock() }} as changed_at
from {{ ref('int_experiment_journey_exposures') }}
where order_id is not null
    and {{ touched() }}
group by slug, order_id, order_currency
