{#- post-hook of the marts: an incremental mart keeps the table it was first built with, so one built
    before its contract declared `constraints: [{type: not_null}]` on a column gets the constraint
    now (ALTER ... SET NOT NULL; it fails, naming the column, if a null is already there). A new or
    rebuilt table has the constraints from its contract already; then this finds nothing to do. -#}
{% macro ensure_not_null_constraints() -%}
  {%- if execute and model.config.materialized == 'incremental' and model.config.contract.enforced -%}
    {%- set wanted = [] -%}
    {%- for name, column in model.columns.items() -%}
      {%- for constraint in column.constraints if constraint.type == 'not_null' -%}
        {%- do wanted.append(name) -%}
      {%- endfor -%}
    {%- endfor -%}
    {%- if wanted -%}
      {%- set nullable = run_query(
            "select column_name from information_schema.columns where table_schema = '" ~ this.schema
            ~ "' and table_name = '" ~ this.identifier ~ "' and is_nullable = 'YES'") -%}
      {%- for row in nullable.rows if row[0] in wanted -%}
        {%- do log("adding NOT NULL to " ~ this ~ "." ~ row[0] ~ " (declared by its contract)", info=true) -%}
        {%- do run_query("alter table " ~ this ~ " alter column " ~ adapter.quote(row[0]) ~ " set not null") -%}
      {%- endfor -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
