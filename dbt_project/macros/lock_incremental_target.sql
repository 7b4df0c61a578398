{#-
  pre-hook of every model (dbt_project.yml), run first, inside the model's transaction: on
  PostgreSQL an incremental table that already exists is locked against another build of the same
  model until this one commits. Two builds that overlap (a run killed while its dbt went on, a
  build started by hand beside a refresh) then take turns per model: the second reads the
  watermarks and rows the first committed, and adds nothing twice. Readers (BI, readiness) are not
  blocked: SHARE ROW EXCLUSIVE only conflicts with writers. The whole-run writer lock
  (resources/warehouse_writer.py) keeps builds from overlapping at all; this holds if one gets past.
  DuckDB: one writing process per file already, nothing to do.
-#}
{% macro lock_incremental_target() -%}
  {{ return(adapter.dispatch('lock_incremental_target')()) }}
{%- endmacro %}

{% macro default__lock_incremental_target() -%}
  {{ return('') }}
{%- endmacro %}

{% macro postgres__lock_incremental_target() -%}
  {%- if execute and config.get('materialized') == 'incremental' -%}
    {%- set existing = load_relation(this) -%}
    {%- if existing is not none and existing.is_table -%}
      {{ return('lock table ' ~ this ~ ' in share row exclusive mode') }}
    {%- endif -%}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}
