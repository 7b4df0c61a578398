{#- on-run-start: tables and views an earlier version of this project kept and nothing reads any more
    (the incremental hooks' watermarks, the Python build record, the models renamed or folded into
    others), dropped so the staging schema holds what the project builds. -#}
{% macro drop_retired_relations() -%}
  {%- if execute -%}
    {%- for name in ['incremental_watermarks', 'dbt_model_builds', 'dbt_builds', 'int_pricing_experiment_entries',
                     'int_experiment_exposures_as_of'] -%}
      {%- set relation = adapter.get_relation(database=target.database, schema=target.schema ~ '_staging', identifier=name) -%}
      {%- if relation is not none -%}
        {%- do log("dropping " ~ relation ~ ": kept by an earlier version, read by nothing now", info=true) -%}
        {%- do adapter.drop_relation(relation) -%}
        {#- A hook's own statements run in a transaction dbt does not commit. -#}
        {%- do adapter.commit() -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}
