{#-
  The Spark side of the one incremental mechanism (macros/materializations/incremental_by_key.sql),
  for Parquet tables of the Hive catalog (contract section 10: no Delta, Iceberg or Hudi jars).

  Such a table has no row deletes, no transactions and no NOT NULL; `create or replace table` is
  refused and `insert overwrite` may not read the table it overwrites. So where the other engines
  delete the touched keys' rows and insert the new ones, Spark writes the table's rows of the keys
  nobody touched plus the new rows beside it (`<table>__next`, same schema) and swaps it in by
  rename (a metadata move of the table's folder). The SQL that computes the new rows stays
  incremental (only the touched keys are recomputed); the write is of the whole table. A run that
  touched no key writes nothing. The same swap trims a changelog and updates the state table.

  The rows of untouched keys are found with a left anti join (a `not in` of two columns would be a
  nested-loop join on Spark).
-#}

{% macro _spark_next_relation(relation) -%}
  {{ return(api.Relation.create(database=relation.database, schema=relation.schema,
                                identifier=relation.identifier ~ '__next', type='table')) }}
{%- endmacro %}

{# Make `relation` hold the rows of `select_sql` (which may read `relation` itself). #}
{% macro _spark_swap_in(relation, select_sql, statement_name=none) -%}
  {%- set next_relation = _spark_next_relation(relation) -%}
  {%- call statement('drop_next_' ~ relation.identifier) -%}
    drop table if exists {{ next_relation }}
  {%- endcall -%}
  {%- call statement(statement_name or 'write_next_' ~ relation.identifier) -%}
    create table {{ next_relation }} using parquet as {{ select_sql }}
  {%- endcall -%}
  {%- call statement('drop_old_' ~ relation.identifier) -%}
    drop table if exists {{ relation }}
  {%- endcall -%}
  {%- call statement('swap_in_' ~ relation.identifier) -%}
    alter table {{ next_relation }} rename to {{ relation }}
  {%- endcall -%}
{%- endmacro %}

{% macro _spark_has_rows(relation_or_query) -%}
  {{ return(run_query('select 1 from ' ~ relation_or_query ~ ' as probe limit 1').rows | length > 0) }}
{%- endmacro %}


{% macro spark__replace_touched_keys(target_relation, new_relation, touched_relation, keys) -%}
  {%- set columns = adapter.get_columns_in_relation(target_relation) | map(attribute='name') | map('lower') | list -%}
  {%- set arriving = adapter.get_columns_in_relation(new_relation) | map(attribute='name') | map('lower') | list -%}
  {%- if arriving | sort != columns | sort -%}
    {{ exceptions.raise_compiler_error(
         "model " ~ model.name ~ ": its SQL returns columns " ~ arriving ~ " but " ~ target_relation ~ " has "
         ~ columns ~ ": run it with --full-refresh to rebuild the table") }}
  {%- endif -%}
  {#- New rows always add their keys to the touched ones: no touched key, nothing to write. -#}
  {%- if _spark_has_rows(touched_relation) -%}
    {%- set select_sql -%}
      select {% for c in columns %}kept.{{ c }}{{ ', ' if not loop.last }}{% endfor %}
      from {{ target_relation }} as kept
      left anti join (select distinct {{ keys | join(', ') }} from {{ touched_relation }}) as touched_keys
        on {% for k in keys %}kept.{{ k }} = touched_keys.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
      union all
      select {{ columns | join(', ') }} from {{ new_relation }}
    {%- endset -%}
    {%- do _spark_swap_in(target_relation, select_sql, 'main') -%}
  {%- else -%}
    {%- call statement('main') -%}
      select 0 as rows_replaced
    {%- endcall -%}
  {%- endif -%}
{%- endmacro %}


{% macro spark__delete_absorbed_changes(changelog, through) -%}
  {%- if not through -%}
    {%- if _spark_has_rows(changelog) -%}
      {%- call statement('delete_absorbed_changes') -%}
        truncate table {{ changelog }}
      {%- endcall -%}
    {%- endif -%}
  {%- elif _spark_has_rows('(select 1 from ' ~ changelog ~ ' where change_clock <= ' ~ instant_literal(through) ~ ')') -%}
    {%- do _spark_swap_in(changelog, 'select * from ' ~ changelog ~ ' where change_clock > ' ~ instant_literal(through)) -%}
  {%- endif -%}
{%- endmacro %}


{# True for the rows whose key is among the keys of `keys_relation`: a left semi join on Spark,
   one column or several. #}
{% macro spark__in_keys(exprs, keys_relation, key_columns) -%}
  {%- if exprs | length == 1 -%}
    {{ exprs[0] }} in (select {{ key_columns[0] }} from {{ keys_relation }} as wanted_keys)
  {%- else -%}
    exists (select 1 from {{ keys_relation }} as wanted_keys
            where {% for e in exprs %}wanted_keys.{{ key_columns[loop.index0] }} = {{ e }}{{ ' and ' if not loop.last }}{% endfor %})
  {%- endif -%}
{%- endmacro %}


{# No row locks on Spark: builds of one warehouse take turns by the run-wide writer lock (held in
   STATE_DATABASE_URL, resources/warehouse_writer.py). #}
{% macro spark__lock_incremental_target(existing_relation) -%}
{%- endmacro %}

{# Parquet tables of the Hive catalog hold no NOT NULL: nothing to add. A null key is still refused
   (refuse_null_keys) and the data tests check the rest. #}
{% macro spark__ensure_not_null_constraints(relation) -%}
{%- endmacro %}

{# The state table (macros/materializations/incremental_state.sql) in Spark's types, one partition
   per model: a model's row is replaced by overwriting its partition (one small write, no read of
   the rest; on-run-start sets partitionOverwriteMode=dynamic). #}
{% macro spark__create_incremental_state() -%}
  create table if not exists {{ incremental_state_relation() }} (
    checksum string,
    rebuilt_at timestamp,
    watermark string,
    as_of_date date,
    built_at timestamp,
    inputs string,
    invocation_id string,
    model_name string
  ) using parquet partitioned by (model_name)
{%- endmacro %}

{% macro spark__incremental_state_exists() -%}
  {%- set relation = incremental_state_relation() -%}
  {%- set found = run_query("show tables in " ~ relation.schema ~ " like '" ~ relation.identifier ~ "'") -%}
  {{ return(found.rows | length > 0) }}
{%- endmacro %}

{% macro spark__replace_incremental_state_rows(rows) -%}
  {%- call statement('replace_incremental_state') -%}
    insert overwrite table {{ incremental_state_relation() }} partition (model_name)
    {%- for row in rows %}
    select {{ _state_text(row.get('checksum')) }}, {{ _state_instant(row.get('rebuilt_at')) }},
       {{ _state_text(tojson(row.get('watermark')) if row.get('watermark') else none) }},
       {{ _state_date(row.get('as_of_date')) }}, {{ _state_instant(row.get('built_at')) }},
       {{ _state_text(row.get('inputs')) }}, {{ _state_text(row.get('invocation_id')) }},
       {{ _state_text(row.get('model_name')) }}
    {{- ' union all' if not loop.last }}
    {%- endfor %}
  {%- endcall -%}
{%- endmacro %}


{#- Contracts: the yml spells types as DuckDB and PostgreSQL do (text, timestamptz, double precision,
    integer, numeric(p, s)); Spark checks the model's columns against the same types in its own
    names (string, timestamp, double, int, decimal(p, s)). -#}
{% macro spark_type_of(data_type) -%}
  {%- set t = data_type | trim | lower -%}
  {%- set names = {'text': 'string', 'varchar': 'string', 'timestamptz': 'timestamp',
                   'timestamp with time zone': 'timestamp', 'double precision': 'double',
                   'integer': 'int', 'json': 'string', 'jsonb': 'string'} -%}
  {%- if t in names -%}
    {{ return(names[t]) }}
  {%- elif t.startswith('numeric') -%}
    {{ return('decimal' ~ t[7:]) }}
  {%- endif -%}
  {{ return(t) }}
{%- endmacro %}

{% macro spark__get_empty_schema_sql(columns) -%}
  {%- set translated = {} -%}
  {%- for name in columns -%}
    {%- set column = columns[name] -%}
    {%- set copy = {} -%}
    {%- do copy.update(column) -%}
    {%- if column.get('data_type') -%}
      {%- do copy.update({'data_type': spark_type_of(column['data_type'])}) -%}
    {%- endif -%}
    {%- do translated.update({name: copy}) -%}
  {%- endfor -%}
  {{ return(default__get_empty_schema_sql(translated)) }}
{%- endmacro %}


{# The cross-database date macros Spark lacks (macros/cross_db/dates.sql). #}
{% macro spark__utc_instant_text(timestamptz_expr) -%}
  date_format(convert_timezone(current_timezone(), 'UTC', cast({{ timestamptz_expr }} as timestamp_ntz)),
              "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'")
{%- endmacro %}
