{#- The exposures the experiment statistics see (contract section 9): those up to the as-of date
    (UTC date of recorded_at <= var as_of_date). A view: a filter over the staging view, read by
    the two models below. Keyed by slug so a refresh limited to touched slugs can filter here. -#}
select
    slug,
    journey_id,
    variant_key,
    event_id,
    recorded_at
from {{ ref('stg_raw__pricing_experiment_exposures') }}
-- utc_date(recorded_at) <= as-of date, without converting every row.
where recorded_at < {{ utc_day_start(as_of_date() ~ ' + 1') }}
