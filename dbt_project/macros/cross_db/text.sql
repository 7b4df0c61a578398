{#- Text tests that read the same on DuckDB and PostgreSQL. -#}

{# True when the text matches the POSIX regular expression `pattern` (a literal). #}
{% macro regex_matches(text_expr, pattern) -%}
  {{ return(adapter.dispatch('regex_matches', 'pricing_ops')(text_expr, pattern)) }}
{%- endmacro %}

{% macro duckdb__regex_matches(text_expr, pattern) -%}
  regexp_full_match({{ text_expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres__regex_matches(text_expr, pattern) -%}
  ({{ text_expr }} ~ '^(?:{{ pattern }})$')
{%- endmacro %}
