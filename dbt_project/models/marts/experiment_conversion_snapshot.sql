{#- Per slug and order currency, over every journey ever exposed to the slug: money and points
    summed over DISTINCT booked orders (status paid or fulfilled now), so an order reached through
    many exposures or many journeys counts once (one row per slug and order upstream). Never summed
    across currencies. A journey whose journey or order row has not reached the warehouse has no
    currency yet and is left out until it does.
    Incremental by (slug, currency), as signed sums: the sums move by the per-order rows that
    changed since the last run (an order changing currency leaves its old group, -1, for its new
    one, +1); the latest activity of a group is read again (an order leaving may take it along). -#}
{{ config(materialized='incremental_by_key', unique_key=['slug', 'order_currency']) }}

with order_changes as (

    select * from {{ changes(ref('int_experiment_slug_orders')) }} as order_changes

),

group_changes as (

    select
        slug,
        order_currency,
        sum(case when is_booked then change_sign * order_total else 0 end) as order_total,
        sum(case when is_booked then change_sign else 0 end) as order_count,
        sum(change_sign * journey_count) as journey_count,
        sum(case when is_booked then change_sign * loyalty_projection_points else 0 end) as loyalty_points
    from order_changes
    group by slug, order_currency

),

group_totals as (

    select
        slug,
        order_currency,
        sum(order_total) as order_total,
        sum(order_count) as order_count,
        sum(journey_count) as journey_count,
        sum(loyalty_points) as loyalty_points
    from (
        select * from group_changes
        {%- if is_incremental() %}
        union all
        select
            built.slug,
            built.order_currency,
            built.order_total,
            built.order_count,
            built.journey_count,
            built.loyalty_points
        from {{ this }} as built
        where {{ touched(['built.slug', 'built.order_currency']) }}
        {%- endif %}
    ) as totals
    group by slug, order_currency

),

latest_activity as (

    {%- if is_incremental() %}
    -- One index lookup per group on Postgres.
    select
        touched_groups.slug,
        touched_groups.order_currency,
        (
            select max(slug_orders.last_activity)
            from {{ ref('int_experiment_slug_orders') }} as slug_orders
            where slug_orders.slug = touched_groups.slug and slug_orders.order_currency = touched_groups.order_currency
        ) as last_activity
    from group_totals as touched_groups
    {%- else %}
    select slug, order_currency, max(last_activity) as last_activity
    from {{ ref('int_experiment_slug_orders') }}
    group by slug, order_currency
    {%- endif %}

)

select
    cast(group_totals.slug as {{ text_type() }}) as slug,
    cast(group_totals.order_currency as {{ text_type() }}) as order_currency,
    cast(group_totals.order_total as numeric(38, 2)) as order_total,
    cast(group_totals.order_count as bigint) as order_count,
    cast(group_totals.journey_count as bigint) as journey_count,
    cast(group_totals.loyalty_points as bigint) as loyalty_points,
    cast(latest_activity.last_activity as {{ instant_type() }}) as last_activity
from group_totals
inner join latest_activity
    on group_totals.slug = latest_activity.slug
    and group_totals.order_currency = latest_activity.order_currency
-- A group every journey left (its orders changed currency) has no row.
where group_totals.journey_count > 0
