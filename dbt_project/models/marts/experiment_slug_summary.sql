{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched('slug', touched_slugs()) }}",
    post_hook=["{{ clear_watermark() }}", "{{ record_watermark() }}"]
) }}
-- depends_on: {{ ref('int_journey_order_state') }}
with exposures as (

    select * from {{ ref('stg_raw__pricing_experiment_exposures') }}
    {%- if is_incremental() %}
    where slug in ({{ touched_slugs() }})
    {%- endif %}

),

journeys as (

    select journey_id from {{ ref('stg_raw__onboarding_journeys') }}

)

select
    cast(exposures.slug as text) as slug,
    -- An exposure whose journey is not in the source (a dirty row, in source_row_rejects) is no journey.
    cast(count(distinct journeys.journey_id) as bigint) as journey_count,
    cast(count(distinct exposures.variant_key) as bigint) as variant_count,
    cast(count(*) as bigint) as exposure_count,
    cast(min(exposures.recorded_at) as timestamptz) as first_exposure_at,
    cast(max(exposures.recorded_at) as timestamptz) as last_exposure_at
from exposures
left join journeys
    on exposures.journey_id = journeys.journey_id
group by exposures.slug
