{#-
  The cross-database macros of macros/cross_db/ in Spark SQL (dbt-spark over Spark Connect, contract
  section 10). JSON is Spark 4's VARIANT: `try_variant_get` for fields, `schema_of_variant` for
  kinds, `variant_explode` for arrays. Instants: UTC conversions are explicit, so no result depends
  on the session time zone (which on-run-start sets to UTC anyway).
-#}

{% macro spark__utc_date(timestamptz_expr) -%}
  cast(convert_timezone(current_timezone(), 'UTC', cast({{ timestamptz_expr }} as timestamp_ntz)) as date)
{%- endmacro %}

{% macro spark__utc_day_start(date_expr) -%}
  cast(convert_timezone('UTC', current_timezone(), cast(cast({{ date_expr }} as date) as timestamp_ntz)) as timestamp)
{%- endmacro %}

{% macro spark__date_spine(start_date_expr, end_date_expr, alias, column) -%}
  {#- explode(null) gives no rows: no dates when the end is before the start (sequence would fail). -#}
  lateral (
    select explode(case
      when cast({{ start_date_expr }} as date) <= cast({{ end_date_expr }} as date)
        then sequence(cast({{ start_date_expr }} as date), cast({{ end_date_expr }} as date), interval 1 day)
    end) as {{ column }}
  ) as {{ alias }}
{%- endmacro %}

{% macro spark__first_by(value_expr, order_exprs) -%}
  min_by({{ value_expr }}, struct({{ order_exprs }}))
{%- endmacro %}

{% macro spark__last_by(value_expr, order_exprs) -%}
  max_by({{ value_expr }}, struct({{ order_exprs }}))
{%- endmacro %}

{% macro spark__regex_matches(text_expr, pattern) -%}
  ({{ text_expr }} rlike '^(?:{{ pattern }})$')
{%- endmacro %}

{% macro spark__json_get_fields(json_expr, keys) -%}
  array({% for key in keys %}try_variant_get({{ json_expr }}, '$["{{ key }}"]'){{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro spark__json_field(fields_expr, keys, key) -%}
  {{ fields_expr }}[{{ keys.index(key) }}]
{%- endmacro %}

{% macro spark__json_kind(json_expr) -%}
  (case
     when {{ json_expr }} is null then null
     when is_variant_null({{ json_expr }}) then 'null'
     else (case regexp_extract(schema_of_variant({{ json_expr }}), '^[A-Z]+', 0)
             when 'OBJECT' then 'object'
             when 'ARRAY' then 'array'
             when 'STRING' then 'string'
             when 'BOOLEAN' then 'boolean'
             else 'number'
           end)
   end)
{%- endmacro %}

{% macro spark__json_string_value(json_expr) -%}
  (case when schema_of_variant({{ json_expr }}) = 'STRING' then cast({{ json_expr }} as string) end)
{%- endmacro %}

{% macro spark__json_to_text(json_expr) -%}
  to_json({{ json_expr }})
{%- endmacro %}

{% macro spark__try_parse_json(text_expr) -%}
  try_parse_json({{ text_expr }})
{%- endmacro %}

{% macro spark__json_array_entries(json_array_expr, alias) -%}
  lateral (
    select
      elements.value as entry,
      cast(elements.pos as bigint) + 1 as entry_index
    from variant_explode({{ json_array_expr }}) as elements
  ) as {{ alias }}
{%- endmacro %}

{% macro spark__json_array_length(json_array_expr) -%}
  array_size(try_variant_get({{ json_array_expr }}, '$', 'array<variant>'))
{%- endmacro %}
