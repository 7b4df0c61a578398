{#- Per slug and order currency, over every journey ever exposed to the slug: money and points
    summed over DISTINCT booked orders (status paid or fulfilled now), so an order reached through
    many exposures or many journeys counts once. Never summed across currencies. A journey whose
    journey or order row has not reached the warehouse has no currency yet and is left out until
    it does. Incremental by slug, from the per-journey model and the journey state: the slugs with a
    new exposure or a changed journey or order. -#}
{{ config(materialized='incremental_by_key', unique_key='slug') }}

with exposed_journeys as (

    select slug, journey_id, last_exposure_at as last_activity
    from {{ ref('int_experiment_journey_exposures') }}
    where {{ touched() }}

),

-- Journeys whose order is in the warehouse (no order yet: no currency to group by).
exposed_journey_orders as (

    select
        exposed_journeys.slug,
        exposed_journeys.journey_id,
        exposed_journeys.last_activity,
        journey_state.order_id,
        journey_state.order_currency,
        journey_state.is_booked,
        journey_state.order_total,
        journey_state.loyalty_projection_points
    from exposed_journeys
    inner join {{ ref('int_journey_order_state') }} as journey_state
        on exposed_journeys.journey_id = journey_state.journey_id
    where journey_state.order_status is not null

),

booked_orders as (

    select distinct
        slug,
        order_currency,
        order_id,
        order_total,
        loyalty_projection_points
    from exposed_journey_orders
    where is_booked

),

booked_totals as (

    select
        slug,
        order_currency,
        sum(order_total) as order_total,
        count(*) as order_count,
        sum(loyalty_projection_points) as loyalty_points
    from booked_orders
    group by slug, order_currency

),

journey_totals as (

    select
        slug,
        order_currency,
        count(distinct journey_id) as journey_count,
        max(last_activity) as last_activity
    from exposed_journey_orders
    group by slug, order_currency

)

select
    cast(journey_totals.slug as text) as slug,
    cast(journey_totals.order_currency as text) as order_currency,
    cast(coalesce(booked_totals.order_total, 0) as numeric(38, 2)) as order_total,
    cast(coalesce(booked_totals.order_count, 0) as bigint) as order_count,
    cast(journey_totals.journey_count as bigint) as journey_count,
    cast(coalesce(booked_totals.loyalty_points, 0) as bigint) as loyalty_points,
    cast(journey_totals.last_activity as timestamptz) as last_activity
from journey_totals
left join booked_totals
    on journey_totals.slug = booked_totals.slug
    and journey_totals.order_currency = booked_totals.order_currency
