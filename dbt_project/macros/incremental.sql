{#-
  Incremental marts: a run recomputes only what new or changed rows touch.

  What changed since a mart last ran is read from two append-only clocks:
  - exposures.loaded_at: the load that brought an event (late events and late-committed rows
    included: they are stamped when they arrive, whatever their recorded_at or id);
  - int_journey_order_state.changed_at: the run that saw a journey's or its order's current
    values change (status, currency, a late-committed update, a journey or order arriving late).
  Each incremental mart keeps its own watermark (the clocks as it last saw them, and the as-of date)
  in `<schema>_staging.incremental_watermarks`, written by its post-hook in the same transaction
  as its rows: a mart that fails or is not selected keeps its old watermark and catches up on its
  next run. No watermark (first run, or a table built before this existed): everything is touched.
  A full refresh rebuilds from all rows (is_incremental() is false) and records the watermark.
-#}

{% macro incremental_watermarks_relation() -%}
  {{ adapter.quote(target.schema ~ '_staging') }}.incremental_watermarks
{%- endmacro %}


{# on-run-start (two hooks, one statement each): the watermark table and its schema exist before
   any model reads them. #}
{% macro create_incremental_watermarks_schema() -%}
  create schema if not exists {{ adapter.quote(target.schema ~ '_staging') }}
{%- endmacro %}

{% macro create_incremental_watermarks() -%}
  create table if not exists {{ incremental_watermarks_relation() }} (
    model_name text not null,
    exposures_through timestamptz,
    journeys_through timestamptz,
    as_of_date date
  )
{%- endmacro %}


{# `<column> > max(<column>)` of this model: the rows loaded since its last run (append-only
   inputs; a batch shares one loaded_at, written whole or not at all). #}
{% macro loaded_since_last_run(column) -%}
  {{ column }} > coalesce((select max({{ column }}) from {{ this }}), cast('1900-01-01 00:00:00+00' as timestamptz))
{%- endmacro %}


{% macro _watermark(column) -%}
  (select max({{ column }}) from {{ incremental_watermarks_relation() }} where model_name = '{{ this.identifier }}')
{%- endmacro %}


{# Journeys whose mart rows may differ from the last run's: a new exposure, or a change of the
   journey or its order (and, with as_of_window, an exposure the move of the as-of date brings in
   or leaves out). Everything when this mart has no watermark. #}
{% macro touched_journeys(as_of_window=false) -%}
  {{ journeys_with_new_exposures() }}
  {%- if as_of_window %}
  union
  select exposures.journey_id
  from {{ ref('stg_raw__pricing_experiment_exposures') }} as exposures
  where {{ in_as_of_window('exposures.recorded_at') }}
  {%- endif %}
  union
  {{ changed_journeys() }}
{%- endmacro %}


{# Journeys with an exposure loaded since this model's last run (everything without a watermark). #}
{% macro journeys_with_new_exposures() -%}
  select exposures.journey_id
  from {{ ref('stg_raw__pricing_experiment_exposures') }} as exposures
  where {{ exposure_is_new('exposures.') }}
{%- endmacro %}


{# True for an exposure loaded since this model's last run (for every one without a watermark).
   `prefix`: the columns' qualifier ("exposures."), none in a delete. #}
{% macro exposure_is_new(prefix='') -%}
  ({{ _watermark('exposures_through') }} is null or {{ prefix }}loaded_at > {{ _watermark('exposures_through') }})
{%- endmacro %}


{# Journeys whose own row or order changed since this mart's last run (everything without a
   watermark). #}
{% macro changed_journeys() -%}
  select journey_state.journey_id
  from {{ ref('int_journey_order_state') }} as journey_state
  where {{ _watermark('journeys_through') }} is null
      or journey_state.changed_at > {{ _watermark('journeys_through') }}
{%- endmacro %}


{# For a mart with one row per exposure: true for the exposures whose row may differ from the last
   run's, the new ones and those of a changed journey (the old exposures of a journey that merely
   has a new one are unchanged). Everything without a watermark. `prefix` as in exposure_is_new. #}
{% macro exposure_touched(prefix='') -%}
  ({{ exposure_is_new(prefix) }} or {{ prefix }}journey_id in ({{ changed_journeys() }}))
{%- endmacro %}


{# pre-hook of such a mart: its rows about to be recomputed. #}
{% macro delete_touched_exposures() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ exposure_touched() }}
  {%- endif -%}
{%- endmacro %}


{# Slugs whose mart rows may differ from the last run's: those with a new exposure, and those a
   changed journey was exposed to (a slug's rows read only its own exposures, so a journey's new
   exposure to one slug leaves its other slugs alone). Marts that depend on the as-of date: every slug when it
   moved (depends_on_as_of_date: the daily spine runs through it), or only the slugs with an
   exposure between the last run's as-of date and this one's (as_of_window: marts that merely
   leave out exposures after it). #}
{% macro touched_slugs(depends_on_as_of_date=false, as_of_window=false) -%}
  {%- set exposures = ref('stg_raw__pricing_experiment_exposures') -%}
  select exposures.slug
  from {{ exposures }} as exposures
  where {{ exposure_is_new('exposures.') }}
  union
  select exposures.slug
  from {{ exposures }} as exposures
  where exposures.journey_id in ({{ changed_journeys() }})
  {%- if as_of_window %}
  union
  select exposures.slug
  from {{ exposures }} as exposures
  where {{ in_as_of_window('exposures.recorded_at') }}
  {%- endif %}
  {%- if depends_on_as_of_date %}
  union
  select exposures.slug
  from {{ exposures }} as exposures
  where {{ _watermark('as_of_date') }} is null
      or {{ _watermark('as_of_date') }} <> {{ as_of_date() }}
  {%- endif %}
{%- endmacro %}


{# True for an instant whose UTC day lies between this mart's last as-of date (exclusive) and this
   run's (inclusive), in either direction: an exposure a later as-of date brings in (loaded long
   ago, past the as-of date then) or an earlier one (a re-run for a past date) leaves out. False
   without a watermark (everything is touched then anyway) and when the date did not move. #}
{% macro in_as_of_window(timestamptz_expr) -%}
  (
    {{ _watermark('as_of_date') }} <> {{ as_of_date() }}
    and {{ timestamptz_expr }} >= {{ utc_day_start('least(' ~ _watermark('as_of_date') ~ ', ' ~ as_of_date() ~ ') + 1') }}
    and {{ timestamptz_expr }} < {{ utc_day_start('greatest(' ~ _watermark('as_of_date') ~ ', ' ~ as_of_date() ~ ') + 1') }}
  )
{%- endmacro %}


{# post-hook of a mart whose every row carries the as-of date: the rows of slugs nothing touched
   take this run's date, as a rebuild would give them (their sums did not change). #}
{% macro stamp_as_of_date() -%}
  {%- if is_incremental() -%}
    update {{ this }} set as_of_date = {{ as_of_date() }} where as_of_date <> {{ as_of_date() }}
  {%- endif -%}
{%- endmacro %}


{# pre-hook: remove the rows about to be recomputed (a key that no longer yields rows goes too). #}
{% macro delete_touched(column, touched_sql) -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ column }} in ({{ touched_sql }})
  {%- endif -%}
{%- endmacro %}


{# post-hooks (two statements, each engine runs one per call): this mart has now seen the clocks
   as they are. Hooks are strings in the model's config, rendered when the model runs:
     pre_hook="{{ delete_touched('slug', touched_slugs()) }}",
     post_hook=["{{ clear_watermark() }}", "{{ record_watermark() }}"]
   and the model names `-- depends_on: {{ ref('int_journey_order_state') }}` (refs read only in
   an is_incremental() branch are invisible to the parse). #}
{% macro clear_watermark() -%}
  delete from {{ incremental_watermarks_relation() }} where model_name = '{{ this.identifier }}'
{%- endmacro %}

{% macro record_watermark(upstream=none) -%}
  insert into {{ incremental_watermarks_relation() }} (model_name, exposures_through, journeys_through, as_of_date)
  select
    '{{ this.identifier }}',
    {{ _no_later_than_upstream('(select max(loaded_at) from ' ~ ref('stg_raw__pricing_experiment_exposures') ~ ')', upstream, 'exposures_through') }},
    {{ _no_later_than_upstream('(select max(changed_at) from ' ~ ref('int_journey_order_state') ~ ')', upstream, 'journeys_through') }},
    {%- if upstream %}
    (select max(as_of_date) from {{ incremental_watermarks_relation() }} where model_name = '{{ upstream }}')
    {%- else %}
    {{ as_of_date() }}
    {%- endif %}
{%- endmacro %}


{# A mart that counts from an incremental intermediate model (`upstream`) has seen only what that
   model had absorbed: a build that selected the mart but not the model (a person materializing
   marts alone) must not move the mart's clocks past the model's, or the rows the model takes in
   later would never reach the mart. No watermark upstream: none here either (a full recompute). #}
{% macro _no_later_than_upstream(clock_sql, upstream, column) -%}
  {%- if upstream -%}
    (select case when upstream.through is null then null else least({{ clock_sql }}, upstream.through) end
     from (select max({{ column }}) as through from {{ incremental_watermarks_relation() }}
           where model_name = '{{ upstream }}') as upstream)
  {%- else -%}
    {{ clock_sql }}
  {%- endif -%}
{%- endmacro %}
