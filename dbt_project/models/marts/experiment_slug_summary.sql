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
