{#- An incremental_by_key table keeps the table it was first built with, so one built before its
    contract declared `constraints: [{type: not_null}]` on a column gets the constraint on its next
    incremental run (ALTER ... SET NOT NULL; it fails, naming the column, if a null is already
    there). A table built whole has the constraints from its contract already; then this finds
    nothing to do. Called by the materialization (macros/materializations/incremental_by_key.sql). -#}
{% macro ensure_not_null_constraints(relation) -%}
  {{ return(adapter.dispatch('ensure_not_null_constraints', 'pricing_ops')(relation)) }}
{%- endmacro %}

{% macro default__ensure_not_null_constraints(relation) -%}
  {%- if execute and model.config.contract.enforced -%}
    {%- set wanted = [] -%}
    {%- for name, column in model.columns.items() -%}
      {%- for constraint in column.constraints if constraint.type == 'not_null' -%}
        {%- do wanted.append(name) -%}
      {%- endfor -%}
    {%- endfor -%}
    {%- if wanted -%}
      {%- set nullable = run_query(
            "select column_name from information_schema.columns where table_schema = '" ~ relation.schema
            ~ "' and table_name = '" ~ relation.identifier ~ "' and is_nullable = 'YES'") -%}
      {%- for row in nullable.rows if row[0] in wanted -%}
        {%- do log("adding NOT NULL to " ~ relation ~ "." ~ row[0] ~ " (declared by its contract)", info=true) -%}
        {%- do run_query("alter table " ~ relation ~ " alter column " ~ adapter.quote(row[0]) ~ " set not null") -%}
      {%- endfor -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
