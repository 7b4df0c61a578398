{#-
  The payload rule of contract section 2 ("Real payloads are dirty"), in one place: every
  candidate entry of every pricing_experiment_segment event, with `reason` null for an exposure
  and a reason code for a reject. One row per event when the event has no usable list
  (entry_index null), else one row per list entry (entry_index 1-based).
  Incremental by event: a run parses only the events loaded since the last one (`new_rows`:
  events are append-only, each load stamps a later `loaded_at`). A table: the exposures and the
  rejects read it.
-#}
{{ config(materialized='incremental_by_key', unique_key='event_id') }}
{%- set payload_keys = ['pricingExperiments', 'surface'] %}
{%- set entry_keys = ['slug', 'variantKey', 'variantName', 'isControl', 'assignmentStrategy', 'featureFlagKey'] %}

with segment_events as (

    select
        event_id,
        journey_id,
        payload,
        recorded_at,
        ingested_at,
        loaded_at,
        {{ json_kind('payload') }} as payload_kind,
        {{ json_get_fields('payload', payload_keys) }} as payload_fields
    from (
        -- json_value: the engine's JSON value as is, Spark's JSON text parsed into a VARIANT.
        select event_id, journey_id, {{ json_value('payload') }} as payload, recorded_at, ingested_at, loaded_at
        from {{ new_rows(ref('stg_raw__onboarding_journey_events')) }} as new_events
        where event_type = 'pricing_experiment_segment'
    ) as events

),

typed_events as (

    select
        segment_events.*,
        {{ json_field('payload_fields', payload_keys, 'pricingExperiments') }} as experiments,
        {{ json_kind(json_field('payload_fields', payload_keys, 'pricingExperiments')) }} as experiments_kind,
        {{ json_string_value(json_field('payload_fields', payload_keys, 'surface')) }} as surface
    from segment_events

),

-- A string holding a JSON-encoded list is used as the list; it is decoded once, not recursively.
decoded_events as (

    select
        typed_events.*,
        case
            when experiments_kind = 'array' then experiments
            when experiments_kind = 'string' then {{ try_parse_json(json_string_value('experiments')) }}
        end as experiments_decoded
    from typed_events

),

checked_events as (

    select
        decoded_events.*,
        case
            when payload_kind <> 'object' then 'payload_not_object'
            when experiments is null then 'pricing_experiments_missing'
            when experiments_kind = 'null' then 'pricing_experiments_null'
            when experiments_kind = 'number' then 'pricing_experiments_number'
            when experiments_kind = 'boolean' then 'pricing_experiments_boolean'
            when experiments_kind = 'object' then 'pricing_experiments_object'
            when experiments_decoded is null
                or {{ json_kind('experiments_decoded') }} <> 'array' then 'pricing_experiments_string'
            when {{ json_array_length('experiments_decoded') }} = 0 then 'pricing_experiments_empty'
        end as event_reason
    from decoded_events

),

event_rejects as (

    select
        event_id,
        journey_id,
        cast(null as bigint) as entry_index,
        case
            when event_reason = 'payload_not_object' then {{ json_to_text('payload') }}
            else {{ json_to_text('experiments') }}
        end as entry,
        event_reason as reason,
        cast(null as {{ text_type() }}) as slug,
        cast(null as {{ text_type() }}) as variant_key,
        cast(null as {{ text_type() }}) as variant_name,
        false as is_control,
        cast(null as {{ text_type() }}) as assignment_strategy,
        cast(null as {{ text_type() }}) as feature_flag_key,
        surface,
        recorded_at,
        ingested_at,
        loaded_at
    from checked_events
    where event_reason is not null

),

entries as (

    select
        checked_events.event_id,
        checked_events.journey_id,
        checked_events.surface,
        checked_events.recorded_at,
        checked_events.ingested_at,
        checked_events.loaded_at,
        items.entry_index,
        items.entry,
        {{ json_kind('items.entry') }} as entry_kind,
        {{ json_get_fields('items.entry', entry_keys) }} as entry_fields
    from checked_events
    cross join {{ json_array_entries('checked_events.experiments_decoded', 'items') }}
    where checked_events.event_reason is null

),

entry_values as (

    select
        entries.*,
        {{ json_field('entry_fields', entry_keys, 'slug') }} as slug_json,
        {{ json_field('entry_fields', entry_keys, 'variantKey') }} as variant_key_json,
        {{ json_field('entry_fields', entry_keys, 'variantName') }} as variant_name_json,
        {{ json_field('entry_fields', entry_keys, 'isControl') }} as is_control_json,
        {{ json_field('entry_fields', entry_keys, 'assignmentStrategy') }} as assignment_strategy_json,
        {{ json_field('entry_fields', entry_keys, 'featureFlagKey') }} as feature_flag_key_json
    from entries

),

checked_entries as (

    select
        entry_values.*,
        {{ json_string_value('slug_json') }} as slug,
        {{ json_string_value('variant_key_json') }} as variant_key,
        case
            when entry_kind = 'null' then 'entry_null'
            when entry_kind = 'string' then 'entry_string'
            when entry_kind = 'array' then 'entry_list'
            when entry_kind = 'number' then 'entry_number'
            when entry_kind = 'boolean' then 'entry_boolean'
            when slug_json is null or {{ json_kind('slug_json') }} = 'null' then 'slug_missing'
            when {{ json_kind('slug_json') }} <> 'string' then 'slug_not_string'
            when {{ json_string_value('slug_json') }} = '' then 'slug_empty'
            when variant_key_json is null or {{ json_kind('variant_key_json') }} = 'null' then 'variant_key_missing'
            when {{ json_kind('variant_key_json') }} <> 'string' then 'variant_key_not_string'
            when {{ json_string_value('variant_key_json') }} = '' then 'variant_key_empty'
        end as entry_reason
    from entry_values

),

-- The same slug twice in one event counts once: the first VALID entry (an invalid earlier entry
-- with that slug does not block a later valid one).
ranked_entries as (

    select
        checked_entries.*,
        row_number() over (
            partition by event_id, slug, (entry_reason is null)
            order by entry_index
        ) as slug_position
    from checked_entries

),

entry_rows as (

    select
        event_id,
        journey_id,
        entry_index,
        -- Only rejects keep the entry's text: exposures carry its fields.
        case
            when entry_reason is not null or slug_position > 1 then {{ json_to_text('entry') }}
        end as entry,
        case
            when entry_reason is not null then entry_reason
            when slug_position > 1 then 'duplicate_slug'
        end as reason,
        slug,
        variant_key,
        {{ json_string_value('variant_name_json') }} as variant_name,
        {{ json_is_true('is_control_json') }} as is_control,
        {{ json_string_value('assignment_strategy_json') }} as assignment_strategy,
        {{ json_string_value('feature_flag_key_json') }} as feature_flag_key,
        surface,
        recorded_at,
        ingested_at,
        loaded_at
    from ranked_entries

)

select * from event_rejects
union all
select * from entry_rows
