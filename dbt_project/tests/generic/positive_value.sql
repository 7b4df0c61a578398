{#- A column test: every non-null value is greater than 0 (a traffic weight, for one). -#}
{% test positive_value(model, column_name) %}
  select {{ column_name }}
  from {{ model }}
  where {{ column_name }} <= 0
{% endtest %}
