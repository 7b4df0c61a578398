{#- A column test: every non-null value is 0 or more (a traffic weight, for one: 0 expects no journeys). -#}
{% test non_negative_value(model, column_name) %}
  select {{ column_name }}
  from {{ model }}
  where {{ column_name }} < 0
{% endtest %}
