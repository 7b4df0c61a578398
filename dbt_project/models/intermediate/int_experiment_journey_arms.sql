{#- One row per (slug, journey) exposed to the slug up to the as-of date: the journey's arm is the
    variant of its FIRST exposure (least recorded_at, then least event id: intention to treat), and
    its outcome uses the CURRENT journey and order rows (booked = order status paid or fulfilled
    now). A journey exposed to two or more variant keys is kept with is_multiple_exposure so the
    slug's health can count it; the metrics leave it out. A journey whose journey or order row has
    not reached the warehouse yet is not booked and has no currency.
    Incremental on journeys (macros/incremental.sql): a run recomputes every slug row of the journeys
    that have a new exposure, a changed journey or order, or an exposure the move of the as-of date
    brings in or leaves out. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched('journey_id', touched_journeys(as_of_window=true)) }}",
    post_hook=["{{ clear_watermark() }}", "{{ record_watermark() }}"]
) }}
-- depends_on: {{ ref('int_journey_order_state') }}
with exposures as (

    select * from {{ ref('int_experiment_exposures_as_of') }}
    {%- if is_incremental() %}
    where journey_id in ({{ touched_journeys(as_of_window=true) }})
    {%- endif %}

),

journey_exposures as (

    select
        slug,
        journey_id,
        {{ first_by('variant_key', 'recorded_at, event_id') }} as first_variant_key,
        -- Two or more variant keys: the least and the greatest differ (cheaper than count distinct).
        min(variant_key) <> max(variant_key) as is_multiple_exposure
    from exposures
    group by slug, journey_id

),

journey_orders as (

    select
        journeys.journey_id,
        orders.order_id,
        orders.order_currency,
        orders.order_status in ('paid', 'fulfilled') as is_booked,
        orders.order_total,
        orders.loyalty_projection_points
    from {{ ref('stg_raw__onboarding_journeys') }} as journeys
    inner join {{ ref('stg_raw__orders') }} as orders
        on journeys.order_id = orders.order_id

)

select
    cast(journey_exposures.slug as text) as slug,
    cast(journey_exposures.journey_id as text) as journey_id,
    cast(journey_exposures.first_variant_key as text) as first_variant_key,
    journey_exposures.is_multiple_exposure,
    cast(journey_orders.order_id as text) as order_id,
    cast(journey_orders.order_currency as text) as order_currency,
    coalesce(journey_orders.is_booked, false) as is_booked,
    journey_orders.order_total,
    journey_orders.loyalty_projection_points
from journey_exposures
left join journey_orders
    on journey_exposures.journey_id = journey_orders.journey_id
