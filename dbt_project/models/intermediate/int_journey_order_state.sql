{#- One row per journey: the current journey and order values the marts read, the one booked rule
    (contract section 3: the order's status is paid or fulfilled now; no order yet: not booked), and
    `changed_at`, the start of the dbt run that first saw them as they are now: the clock the
    incremental models read to recompute what a change touches.

    Orders and journeys change in place and a change can commit long after its updated_at (contract
    section 2), so a change is found by comparing the values, not by a timestamp: a scan of
    journeys and orders (a fraction of the events); only the journeys whose values differ are
    written (the model's rows of other keys stay as they are). -#}
{{ config(materialized='incremental_by_key', unique_key='journey_id') }}
{%- set tracked = ['order_id', 'journey_status', 'order_number', 'order_status', 'order_total',
                   'order_currency', 'loyalty_projection_points'] %}

with current_state as (

    select
        journeys.journey_id,
        journeys.order_id,
        journeys.journey_status,
        orders.order_number,
        orders.order_status,
        orders.order_total,
        orders.order_currency,
        orders.loyalty_projection_points
    from {{ ref('stg_raw__onboarding_journeys') }} as journeys
    left join {{ ref('stg_raw__orders') }} as orders
        on journeys.order_id = orders.order_id

)

select
    {%- for column in ['journey_id'] + tracked %}
    current_state.{{ column }},
    {%- endfor %}
    coalesce(current_state.order_status in ('paid', 'fulfilled'), false) as is_booked,
    {{ run_clock() }} as changed_at
from current_state
{%- if is_incremental() %}
left join {{ this }} as previous
    on current_state.journey_id = previous.journey_id
where previous.journey_id is null
    {%- for column in tracked %}
    or current_state.{{ column }} is distinct from previous.{{ column }}
    {%- endfor %}
{%- endif %}
