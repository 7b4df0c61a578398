{#- Type names every engine accepts: DuckDB and PostgreSQL say `text` and `timestamptz`; Spark has
    `string` and `timestamp` (its instant type, shown in the session time zone). -#}

{% macro text_type() -%}
  {{ return(adapter.dispatch('text_type', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__text_type() -%}text{%- endmacro %}

{% macro spark__text_type() -%}string{%- endmacro %}


{% macro instant_type() -%}
  {{ return(adapter.dispatch('instant_type', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__instant_type() -%}timestamptz{%- endmacro %}

{% macro spark__instant_type() -%}timestamp{%- endmacro %}


{#- A JSON column as the engine's JSON value: DuckDB's json and Postgres's jsonb already are; Spark
    keeps raw JSON as text and reads it as a VARIANT (no Delta or other jars needed). -#}
{% macro json_value(expr) -%}
  {{ return(adapter.dispatch('json_value', 'pricing_ops')(expr)) }}
{%- endmacro %}

{% macro default__json_value(expr) -%}{{ expr }}{%- endmacro %}

{% macro spark__json_value(expr) -%}try_parse_json({{ expr }}){%- endmacro %}
