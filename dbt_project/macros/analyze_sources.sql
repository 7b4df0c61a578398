{#-
  on-run-start: raw tables Postgres has no statistics of yet (loaded by the extract, never analyzed:
  a server without autovacuum, or a load too recent for it) are analyzed once, so the incremental
  models' `loaded_at > <watermark>` reads use the clock index instead of scanning every event. Once
  a histogram exists, Postgres reads the newest values from the index itself. No-op on DuckDB.
-#}
{% macro analyze_unanalyzed_sources() -%}
  {{ return(adapter.dispatch('analyze_unanalyzed_sources', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__analyze_unanalyzed_sources() -%}
{%- endmacro %}

{% macro postgres__analyze_unanalyzed_sources() -%}
  {%- if execute -%}
    {%- set checked = [] -%}
    {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
      {%- set relation = adapter.get_relation(database=source.database, schema=source.schema, identifier=source.identifier) -%}
      {%- if relation is not none -%}
        {%- do checked.append(relation) -%}
        {%- set found = run_query(
              "select exists (select 1 from pg_stats where schemaname = '" ~ relation.schema
              ~ "' and tablename = '" ~ relation.identifier ~ "')") -%}
        {%- if not found.rows[0][0] -%}
          {%- do log("analyzing " ~ relation ~ ": no planner statistics yet", info=true) -%}
          {%- do run_query("analyze " ~ relation) -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
    {#- A hook's own queries run in a transaction dbt does not commit: statistics would roll back. -#}
    {%- if checked -%}
      {%- do adapter.commit() -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
