{#- One row per (slug, journey) exposed to the slug up to the as-of date: the journey's arm is the
    variant of its FIRST exposure (least recorded_at, then least event id: intention to treat), and
    its outcome uses the CURRENT journey and order rows (booked = order status paid or fulfilled
    now). A journey exposed to two or more variant keys is kept with is_multiple_exposure so the
    slug's health can count it; the metrics leave it out. A journey whose journey or order row has
    not reached the warehouse yet is not booked and has no currency. -#}
with exposures as (

    select * from {{ ref('int_experiment_exposures_as_of') }}

),

exposures_in_order as (

    select
        slug,
        journey_id,
        variant_key,
        row_number() over (
            partition by slug, journey_id
            order by recorded_at asc, event_id asc
        ) as exposure_rank
    from exposures

),

first_exposures as (

    select slug, journey_id, variant_key as first_variant_key
    from exposures_in_order
    where exposure_rank = 1

),

journey_variant_counts as (

    select
        slug,
        journey_id,
        count(distinct variant_key) as variant_count
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
    cast(first_exposures.slug as text) as slug,
    cast(first_exposures.journey_id as text) as journey_id,
    cast(first_exposures.first_variant_key as text) as first_variant_key,
    cast(journey_variant_counts.variant_count as bigint) as variant_count,
    journey_variant_counts.variant_count > 1 as is_multiple_exposure,
    cast(journey_orders.order_id as text) as order_id,
    cast(journey_orders.order_currency as text) as order_currency,
    coalesce(journey_orders.is_booked, false) as is_booked,
    journey_orders.order_total,
    journey_orders.loyalty_projection_points
from first_exposures
inner join journey_variant_counts
    on first_exposures.slug = journey_variant_counts.slug
    and first_exposures.journey_id = journey_variant_counts.journey_id
left join journey_orders
    on first_exposures.journey_id = journey_orders.journey_id
