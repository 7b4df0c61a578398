with exposures as (

    select * from {{ ref('stg_raw__pricing_experiment_exposures') }}

)

select
    cast(slug as text) as slug,
    cast(count(distinct journey_id) as bigint) as journey_count,
    cast(count(distinct variant_key) as bigint) as variant_count,
    cast(count(*) as bigint) as exposure_count,
    cast(min(recorded_at) as timestamptz) as first_exposure_at,
    cast(max(recorded_at) as timestamptz) as last_exposure_at
from exposures
group by slug
