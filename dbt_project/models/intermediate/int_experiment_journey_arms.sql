{#- One row per (slug, journey) exposed to the slug up to the as-of date: the journey's arm is the
    variant of its FIRST exposure (least recorded_at, then least event id: intention to treat), and
    its outcome uses the CURRENT journey and order rows (int_journey_order_state, through the
    per-journey model). A journey that saw another variant key by the as-of date is kept with
    is_multiple_exposure so the slug's health can count it; the metrics leave it out. A journey
    whose journey or order row has not reached the warehouse yet is not booked and has no order or
    currency.
    Incremental by journey: the journeys whose per-journey row changed; built whole when the as-of
    date moves (its call of as_of_date()). Its changelog is what the metrics add up. -#}
{{ config(materialized='incremental_by_key', unique_key='journey_id') }}

select
    cast(exposed.slug as {{ text_type() }}) as slug,
    cast(exposed.journey_id as {{ text_type() }}) as journey_id,
    cast(exposed.first_variant_key as {{ text_type() }}) as first_variant_key,
    -- The first other variant key seen by the end of the as-of date.
    coalesce(exposed.other_variant_first_at < {{ utc_day_start(as_of_date() ~ ' + 1') }}, false) as is_multiple_exposure,
    cast(exposed.order_id as {{ text_type() }}) as order_id,
    cast(exposed.order_currency as {{ text_type() }}) as order_currency,
    exposed.is_booked,
    exposed.order_total,
    exposed.loyalty_projection_points,
    {{ run_clock() }} as changed_at
from {{ ref('int_experiment_journey_exposures') }} as exposed
-- utc_date(first_exposure_at) <= as-of date, without converting every row.
where exposed.first_exposure_at < {{ utc_day_start(as_of_date() ~ ' + 1') }}
    and {{ touched('exposed.journey_id') }}
