{#-
  A model-level test: no two rows share the same values of `combination_of_columns` (the grain).
  Written here because dbt_utils is not installed (no `dbt deps`: no network at build time).
  Usage:  data_tests: [{unique_combination_of_columns: {arguments: {combination_of_columns: [a, b]}}}]
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
  {%- set columns_csv = combination_of_columns | join(', ') %}
  select {{ columns_csv }}, count(*) as row_count
  from {{ model }}
  group by {{ columns_csv }}
  having count(*) > 1
{% endtest %}
