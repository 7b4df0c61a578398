{#-
  on-run-start: an incremental model whose existing table lacks a column its contract now declares
  (a warehouse built by an earlier version, e.g. experiment_variant_metrics before booked_journeys)
  is dropped, so this run builds it whole instead of failing on on_schema_change='fail' or keeping
  nulls in the rows no new data touches. Its rows are derived from the raw tables, so nothing is
  lost; its post-hooks record a fresh watermark. Only models this run builds, and never one with
  full_refresh=false (experiment_conversion_snapshot_history: past days cannot be recomputed).
  adapter.drop_relation keeps dbt's relation cache in step, so is_incremental() is false after. The
  work happens while the hook renders; it leaves no SQL of its own to run.
-#}
{% macro rebuild_when_columns_missing() -%}
  {%- if execute -%}
    {%- for node in graph.nodes.values()
          if node.resource_type == 'model' and node.unique_id in selected_resources
          and node.config.materialized == 'incremental' and node.config.contract.enforced
          and node.config.full_refresh is not false -%}
      {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
      {%- if relation is not none -%}
        {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = node.columns.keys() | map('lower') | reject('in', existing) | list -%}
        {%- if missing -%}
          {%- do log("rebuilding " ~ relation ~ " whole: its table lacks " ~ missing | join(', ')
                     ~ " (declared by its contract)", info=true) -%}
          {%- do adapter.drop_relation(relation) -%}
          {#- Reading the columns opened a transaction: the drop must not roll back with it. -#}
          {%- do adapter.commit() -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}
