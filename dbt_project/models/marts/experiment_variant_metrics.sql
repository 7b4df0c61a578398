{#- The sums behind the experiment statistics (contract section 9), per arm and metric: journeys
    (n), booked_journeys (of those, the journeys whose order is booked: the denominator of the
    average order value, section 9.1), total (exact sum of y) and total_squares (exact sum of y
    squared), y being per journey
      conversion      1 when its order is booked now, else 0 (all currencies, currency null);
      loyalty_points  the order's points when booked, else 0 (all currencies, currency null);
      revenue         the order total when booked, else 0, per order currency.
    Journeys exposed to 2+ variant keys are left out. Every arm (every variant key exposed up to the
    as-of date) has its rows, 0 journeys included; revenue has a row for every arm and every currency
    that any counted journey of the slug has. Every CTE is keyed by slug.
    Incremental by slug, as signed sums: every sum moves by the per-journey arm rows that changed
    since the last run (a journey whose order was refunded leaves its old row, -1, for its new one,
    +1); the arms come from the per-variant model; built whole when the as-of date moves (every
    row carries it). -#}
{{ config(materialized='incremental_by_key', unique_key='slug') }}

-- Every variant key exposed up to the as-of date: utc_date(first exposure) <= as-of date.
with arms as (

    select slug, variant_key
    from {{ ref('int_experiment_variants') }}
    where first_exposure_at < {{ utc_day_start(as_of_date() ~ ' + 1') }}
        and {{ touched() }}

),

journey_changes as (

    select * from {{ changes(ref('int_experiment_journey_arms')) }} as journey_changes

),

counted_changes as (

    select
        slug,
        first_variant_key as variant_key,
        order_currency,
        change_sign,
        case when is_booked then 1 else 0 end as converted,
        -- Both branches typed: DuckDB would otherwise round the decimal to the integer 0's type.
        case
            when is_booked then cast(order_total as numeric(38, 2))
            else cast(0 as numeric(38, 2))
        end as revenue,
        case
            when is_booked then cast(loyalty_projection_points as numeric(38, 0))
            else cast(0 as numeric(38, 0))
        end as loyalty_points
    from journey_changes
    where not is_multiple_exposure

),

-- What each arm's sums moved by, per order currency (null: no order in the warehouse yet).
partial_changes as (

    select
        slug,
        variant_key,
        order_currency,
        sum(change_sign) as journeys,
        sum(change_sign * converted) as conversions,
        sum(change_sign * revenue) as revenue,
        sum(change_sign * revenue * revenue) as revenue_squares,
        sum(change_sign * loyalty_points) as loyalty_points,
        sum(change_sign * loyalty_points * loyalty_points) as loyalty_points_squares
    from counted_changes
    group by slug, variant_key, order_currency

),

-- Across currencies: the sums so far (this model's loyalty_points rows hold the arm's journeys,
-- booked journeys, points and their squares) and what they moved by.
arm_totals as (

    select
        slug,
        variant_key,
        sum(journeys) as journeys,
        sum(conversions) as conversions,
        sum(loyalty_points) as loyalty_points,
        sum(loyalty_points_squares) as loyalty_points_squares
    from (
        select slug, variant_key, journeys, conversions, loyalty_points, loyalty_points_squares
        from partial_changes
        {%- if is_incremental() %}
        union all
        select
            built.slug,
            built.variant_key,
            built.journeys,
            built.booked_journeys,
            built.total,
            built.total_squares
        from {{ this }} as built
        where built.metric = 'loyalty_points' and {{ touched('built.slug') }}
        {%- endif %}
    ) as sums
    group by slug, variant_key

),

arm_currency_totals as (

    select
        slug,
        variant_key,
        order_currency,
        sum(journeys) as journeys,
        sum(booked_journeys) as booked_journeys,
        sum(revenue) as revenue,
        sum(revenue_squares) as revenue_squares
    from (
        select
            slug,
            variant_key,
            order_currency,
            journeys,
            conversions as booked_journeys,
            revenue,
            revenue_squares
        from partial_changes
        where order_currency is not null
        {%- if is_incremental() %}
        union all
        select
            built.slug,
            built.variant_key,
            built.currency,
            built.journeys,
            built.booked_journeys,
            built.total,
            built.total_squares
        from {{ this }} as built
        where built.metric = 'revenue' and {{ touched('built.slug') }}
        {%- endif %}
    ) as sums
    group by slug, variant_key, order_currency

),

-- The currencies any counted journey of the slug has.
slug_currencies as (

    select slug, order_currency
    from arm_currency_totals
    group by slug, order_currency
    having sum(journeys) > 0

),

{#- conversion and loyalty_points: one row per arm, across currencies. A conversion y is 0 or 1, so
    its squares are its total. Every branch typed alike: a union takes the first one's types. #}
{%- for metric, total, squares in [('conversion', 'conversions', 'conversions'),
                                   ('loyalty_points', 'loyalty_points', 'loyalty_points_squares')] %}
{{ metric }}_rows as (

    select
        arms.slug,
        arms.variant_key,
        '{{ metric }}' as metric,
        cast(null as {{ text_type() }}) as currency,
        coalesce(arm_totals.journeys, 0) as journeys,
        coalesce(arm_totals.conversions, 0) as booked_journeys,
        cast(coalesce(arm_totals.{{ total }}, 0) as numeric(38, 2)) as total,
        cast(coalesce(arm_totals.{{ squares }}, 0) as numeric(38, 4)) as total_squares
    from arms
    left join arm_totals
        on arms.slug = arm_totals.slug
        and arms.variant_key = arm_totals.variant_key

),
{% endfor %}

revenue_rows as (

    select
        arms.slug,
        arms.variant_key,
        'revenue' as metric,
        slug_currencies.order_currency as currency,
        coalesce(arm_currency_totals.journeys, 0) as journeys,
        coalesce(arm_currency_totals.booked_journeys, 0) as booked_journeys,
        cast(coalesce(arm_currency_totals.revenue, 0) as numeric(38, 2)) as total,
        cast(coalesce(arm_currency_totals.revenue_squares, 0) as numeric(38, 4)) as total_squares
    from arms
    inner join slug_currencies
        on arms.slug = slug_currencies.slug
    left join arm_currency_totals
        on arms.slug = arm_currency_totals.slug
        and arms.variant_key = arm_currency_totals.variant_key
        and slug_currencies.order_currency = arm_currency_totals.order_currency

),

metric_rows as (

    select * from conversion_rows
    union all
    select * from loyalty_points_rows
    union all
    select * from revenue_rows

)

select
    cast(slug as {{ text_type() }}) as slug,
    cast(variant_key as {{ text_type() }}) as variant_key,
    cast(metric as {{ text_type() }}) as metric,
    cast(currency as {{ text_type() }}) as currency,
    cast(journeys as bigint) as journeys,
    cast(booked_journeys as bigint) as booked_journeys,
    cast(total as numeric(38, 2)) as total,
    cast(total_squares as numeric(38, 4)) as total_squares,
    {{ as_of_date() }} as as_of_date
from metric_rows
