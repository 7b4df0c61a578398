{#- One row per (slug, journey) ever exposed to the slug: its exposures counted, the first and the
    last (recorded_at), and the variant of the latest one (greatest recorded_at, then event id).
    The slug marts count journeys from here instead of re-aggregating every exposure of a slug.
    Only a new exposure of a journey changes its rows (its journey and order state are the marts'
    business), so a run recomputes the slug rows of the journeys with a new exposure. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched('journey_id', journeys_with_new_exposures()) }}",
    post_hook=["{{ clear_watermark() }}", "{{ record_watermark() }}"]
) }}
-- depends_on: {{ ref('int_journey_order_state') }}
with exposures as (

    select * from {{ ref('stg_raw__pricing_experiment_exposures') }}
    {%- if is_incremental() %}
    where journey_id in ({{ journeys_with_new_exposures() }})
    {%- endif %}

)

select
    cast(slug as text) as slug,
    cast(journey_id as text) as journey_id,
    cast(count(*) as bigint) as exposure_count,
    cast(min(recorded_at) as timestamptz) as first_exposure_at,
    cast(max(recorded_at) as timestamptz) as last_exposure_at,
    cast({{ last_by('variant_key', 'recorded_at, event_id') }} as text) as latest_variant_key
from exposures
group by slug, journey_id
