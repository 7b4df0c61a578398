{#-
  `<schema>_staging.incremental_state`: one row per model, what the incremental mechanism and the
  refresh's "nothing new" skip know of its last build.

    model_name     the dbt model (or seed)
    checksum       its SQL file's checksum at its last build: another one means a full rebuild
    rebuilt_at     the start of the run that last rebuilt it whole (incremental_by_key models)
    watermark      JSON {"<upstream model>": {"through": <its clock's max, ISO Z>, "rebuilt_at": ...}}:
                   the upstream rows this model has absorbed (incremental_by_key models)
    as_of_date     the as-of date of its rows (models whose SQL calls as_of_date())
    built_at       the start of the last dbt invocation that built it and succeeded whole
    inputs         what that invocation read, as the caller described it (env PRICING_OPS_BUILD_INPUTS:
                   the Dagster asset's raw-table fingerprint, as-of date, code version and vars); null
                   when dbt ran by hand. The refresh leaves dbt alone when it equals what it would read now.
    invocation_id  the dbt invocation that wrote the row

  The incremental_by_key materialization writes its model's row in the transaction that replaces
  its rows (watermark, rebuilt_at, inputs cleared); the on-run-end hook `record_model_builds` sets
  built_at and inputs of every model the invocation built once all of it succeeded. Writes replace
  whole rows (delete + insert, `replace_incremental_state_rows`): an engine without row deletes
  overwrites this small table instead.
-#}

{% macro incremental_state_relation() -%}
  {{ return(api.Relation.create(database=target.database if target.type == 'duckdb' else none,
                                schema=target.schema ~ '_staging', identifier='incremental_state', type='table')) }}
{%- endmacro %}

{% macro incremental_state_columns() -%}
  {{ return(['model_name', 'checksum', 'rebuilt_at', 'watermark', 'as_of_date', 'built_at', 'inputs', 'invocation_id']) }}
{%- endmacro %}


{# on-run-start (two hooks, one statement each): the state table and its schema exist before any model runs. #}
{% macro create_incremental_state_schema() -%}
  create schema if not exists {{ adapter.quote(target.schema ~ '_staging') }}
{%- endmacro %}

{% macro create_incremental_state() -%}
  {{ return(adapter.dispatch('create_incremental_state', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__create_incremental_state() -%}
  create table if not exists {{ incremental_state_relation() }} (
    model_name text not null,
    checksum text,
    rebuilt_at timestamptz,
    watermark text,
    as_of_date date,
    built_at timestamptz,
    inputs text,
    invocation_id text
  )
{%- endmacro %}


{# Whether the state table exists. Asked of the database: on-run-start creates it after dbt cached
   the schemas' relations, so the cache of a run on a new warehouse does not know it. Once it
   exists, it is not asked again in the invocation. #}
{% macro incremental_state_exists() -%}
  {%- set cache = incremental_invocation_cache() -%}
  {%- if not cache.state_exists -%}
    {%- do cache.update({'state_exists': adapter.dispatch('incremental_state_exists', 'pricing_ops')()}) -%}
  {%- endif -%}
  {{ return(cache.state_exists) }}
{%- endmacro %}

{% macro default__incremental_state_exists() -%}
  {%- set relation = incremental_state_relation() -%}
  {%- set found = run_query("select count(*) from information_schema.tables where table_schema = '"
                            ~ relation.schema ~ "' and table_name = '" ~ relation.identifier ~ "'") -%}
  {{ return(found.rows[0][0] > 0) }}
{%- endmacro %}


{# {model_name: row dict} for the named models (every model when `names` is none); instants as ISO
   text ending in Z, the as-of date as 'YYYY-MM-DD', the watermark parsed. #}
{% macro incremental_state_rows(names=none) -%}
  {%- set relation = incremental_state_relation() -%}
  {%- set sql -%}
    select model_name, checksum, {{ utc_instant_text('rebuilt_at') }} as rebuilt_at, watermark,
           cast(as_of_date as {{ text_type() }}) as as_of_date, {{ utc_instant_text('built_at') }} as built_at, inputs,
           invocation_id
    from {{ relation }}
    {%- if names is not none %}
    where model_name in ({% for name in names %}'{{ name }}'{{ ', ' if not loop.last }}{% endfor %}{{ "''" if not names }})
    {%- endif %}
  {%- endset -%}
  {%- set out = {} -%}
  {%- for row in run_query(sql).rows -%}
    {%- set values = {} -%}
    {%- for column in incremental_state_columns() -%}
      {%- do values.update({column: row[column]}) -%}
    {%- endfor -%}
    {%- do values.update({'watermark': fromjson(row['watermark']) if row['watermark'] else {}}) -%}
    {%- do out.update({row['model_name']: values}) -%}
  {%- endfor -%}
  {{ return(out) }}
{%- endmacro %}


{# Replace the rows of these models (dicts with the keys above; missing keys are null). #}
{% macro replace_incremental_state_rows(rows) -%}
  {%- if rows -%}
    {% do adapter.dispatch('replace_incremental_state_rows', 'pricing_ops')(rows) %}
  {%- endif -%}
{%- endmacro %}

{% macro default__replace_incremental_state_rows(rows) -%}
  {%- set relation = incremental_state_relation() -%}
  {%- call statement('delete_incremental_state') -%}
    delete from {{ relation }}
    where model_name in ({% for row in rows %}'{{ row.model_name }}'{{ ', ' if not loop.last }}{% endfor %})
  {%- endcall -%}
  {%- call statement('insert_incremental_state') -%}
    insert into {{ relation }} ({{ incremental_state_columns() | join(', ') }})
    values
    {%- for row in rows %}
      ({{ _state_text(row.get('model_name')) }}, {{ _state_text(row.get('checksum')) }},
       {{ _state_instant(row.get('rebuilt_at')) }},
       {{ _state_text(tojson(row.get('watermark')) if row.get('watermark') else none) }},
       {{ _state_date(row.get('as_of_date')) }}, {{ _state_instant(row.get('built_at')) }},
       {{ _state_text(row.get('inputs')) }}, {{ _state_text(row.get('invocation_id')) }})
      {{- ', ' if not loop.last }}
    {%- endfor %}
  {%- endcall -%}
{%- endmacro %}

{% macro _state_text(value) -%}
  {%- if value is none or value == '' -%} cast(null as {{ text_type() }}) {%- else -%} '{{ value | string | replace("'", "''") }}' {%- endif -%}
{%- endmacro %}

{% macro _state_instant(value) -%}
  {%- if value is none or value == '' -%} cast(null as {{ instant_type() }}) {%- else -%} {{ instant_literal(value) }} {%- endif -%}
{%- endmacro %}

{% macro _state_date(value) -%}
  {%- if value is none or value == '' -%} cast(null as date) {%- else -%} cast('{{ value }}' as date) {%- endif -%}
{%- endmacro %}


{#-
  on-run-end: the invocation built these models and nothing in it failed: their rows take this
  run's start as built_at and the inputs the caller described (env PRICING_OPS_BUILD_INPUTS). A
  failed invocation records nothing, so the next refresh runs dbt again. Only commands that build.
-#}
{% macro record_model_builds(results) -%}
  {%- if execute and flags.WHICH in ['build', 'run', 'seed'] -%}
    {%- set failed = results | selectattr('status', 'in', ['error', 'fail', 'runtime error', 'skipped']) | list -%}
    {%- set built = [] -%}
    {%- for result in results
          if result.node.resource_type in ['model', 'seed'] and result.status == 'success' -%}
      {%- do built.append(result.node.name) -%}
    {%- endfor -%}
    {%- if built and not failed -%}
      {%- set inputs = env_var('PRICING_OPS_BUILD_INPUTS', '') or none -%}
      {%- set existing = incremental_state_rows(built) -%}
      {%- set rows = [] -%}
      {%- for name in built -%}
        {%- set row = existing.get(name, {'model_name': name}) -%}
        {%- do row.update({'built_at': run_clock_text(), 'inputs': inputs, 'invocation_id': invocation_id}) -%}
        {%- do rows.append(row) -%}
      {%- endfor -%}
      {%- do replace_incremental_state_rows(rows) -%}
      {%- do adapter.commit() -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}


{#-
  Data tests check what the build may have written, not every row: dbt's `get_where_subquery`
  (the relation a generic test reads) restricted, for a model whose config names a clock
  (`meta: {clock: <column>}`, or `meta: {tests_window: <column>}` for a column that only grows
  with new rows), to the rows whose clock is past the start of the model's last successful build.
  Uniqueness among the new rows, their not-nulls, accepted values and relationships (a new child
  needs its parent) are checked on every build. A model built whole in this run or never built, and
  every model when env PRICING_OPS_FULL_DATA_TESTS is set (the daily resync), are checked whole. A
  test's own `where` config is kept.
-#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where') -%}
  {%- set window = _data_test_window() if execute else none -%}
  {%- set conditions = [where] if where else [] -%}
  {%- if window -%}
    {%- do conditions.append(window) -%}
  {%- endif -%}
  {%- if conditions -%}
    {{ return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') }}
  {%- endif -%}
  {{ return(relation) }}
{%- endmacro %}

{% macro _data_test_window() -%}
  {%- if env_var('PRICING_OPS_FULL_DATA_TESTS', '') not in ['', '0', 'false'] -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set tested = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
  {%- set meta = (tested.config.meta or {}) if tested is not none else {} -%}
  {%- set column = meta.get('tests_window') or meta.get('clock') -%}
  {%- if not column -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set since -%}
    coalesce(
      (select case when rebuilt_at >= {{ run_clock() }} then null else built_at end
       from {{ incremental_state_relation() }} where model_name = '{{ tested.name }}'),
      {{ instant_literal('1900-01-01T00:00:00Z') }})
  {%- endset -%}
  {{ return(column ~ ' > ' ~ since) }}
{%- endmacro %}
