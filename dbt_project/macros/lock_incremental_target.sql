{#-
  Step 0 of the incremental_by_key materialization, inside the model's transaction: on PostgreSQL
  an incremental table that already exists is locked against another build of the same model until
  this one commits. Two builds that overlap (a run killed while its dbt went on, a build started by
  hand beside a refresh) then take turns per model: the second reads the watermarks and rows the
  first committed, and adds nothing twice. Readers (BI, readiness) are not blocked: SHARE ROW
  EXCLUSIVE only conflicts with writers. The whole-run writer lock (resources/warehouse_writer.py)
  keeps builds from overlapping at all; this holds if one gets past.
  DuckDB: one writing process per file already, nothing to do.
-#}
{% macro lock_incremental_target(existing_relation) -%}
  {{ return(adapter.dispatch('lock_incremental_target', 'pricing_ops')(existing_relation)) }}
{%- endmacro %}

{% macro default__lock_incremental_target(existing_relation) -%}
{%- endmacro %}

{% macro postgres__lock_incremental_target(existing_relation) -%}
  {%- if existing_relation is not none and existing_relation.is_table -%}
    {%- call statement('lock_incremental_target') -%}
      lock table {{ existing_relation }} in share row exclusive mode
    {%- endcall -%}
  {%- endif -%}
{%- endmacro %}
