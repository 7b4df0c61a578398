{#-
  JSON access that reads the same on DuckDB (`json`) and PostgreSQL (`jsonb`).
  Every macro takes and returns SQL expressions; a JSON value that is absent is SQL null, a JSON
  null is a JSON value whose json_kind is 'null'.
-#}

{# The values under several keys of a JSON object, as a list of JSON values in the order of `keys`
   (SQL null where absent); pick one with `list[i]`, 1-based on both engines. DuckDB stores JSON as
   text and parses it on every access: one multi-path extraction parses the object once. #}
{% macro json_get_fields(json_expr, keys) -%}
  {{ return(adapter.dispatch('json_get_fields', 'pricing_ops')(json_expr, keys)) }}
{%- endmacro %}

{% macro duckdb__json_get_fields(json_expr, keys) -%}
  json_extract({{ json_expr }}, [{% for key in keys %}'$."{{ key }}"'{{ ", " if not loop.last }}{% endfor %}])
{%- endmacro %}

{% macro postgres__json_get_fields(json_expr, keys) -%}
  array[{% for key in keys %}({{ json_expr }} -> '{{ key }}'){{ ", " if not loop.last }}{% endfor %}]
{%- endmacro %}


{# One value of a `json_get_fields(json_expr, keys)` list, by its key: `json_field('fields', keys,
   'slug')`, so models name the field they read (the list stays one parse of the object). #}
{% macro json_field(fields_expr, keys, key) -%}
  {%- if key not in keys -%}
    {{ exceptions.raise_compiler_error("json_field: '" ~ key ~ "' is not one of " ~ keys) }}
  {%- endif -%}
  {{ return(adapter.dispatch('json_field', 'pricing_ops')(fields_expr, keys, key)) }}
{%- endmacro %}

{% macro default__json_field(fields_expr, keys, key) -%}
  {{ fields_expr }}[{{ keys.index(key) + 1 }}]
{%- endmacro %}


{# The JSON kind of a value, one vocabulary on both engines:
   'null' | 'boolean' | 'number' | 'string' | 'array' | 'object'; SQL null when absent. #}
{% macro json_kind(json_expr) -%}
  {{ return(adapter.dispatch('json_kind', 'pricing_ops')(json_expr)) }}
{%- endmacro %}

{% macro duckdb__json_kind(json_expr) -%}
  (case json_type({{ json_expr }})
     when 'NULL' then 'null'
     when 'BOOLEAN' then 'boolean'
     when 'VARCHAR' then 'string'
     when 'ARRAY' then 'array'
     when 'OBJECT' then 'object'
     when 'BIGINT' then 'number'
     when 'UBIGINT' then 'number'
     when 'HUGEINT' then 'number'
     when 'DOUBLE' then 'number'
   end)
{%- endmacro %}

{% macro postgres__json_kind(json_expr) -%}
  jsonb_typeof({{ json_expr }})
{%- endmacro %}


{# The text of a JSON string, unescaped (byte for byte what the producer meant); else SQL null. #}
{% macro json_string_value(json_expr) -%}
  {{ return(adapter.dispatch('json_string_value', 'pricing_ops')(json_expr)) }}
{%- endmacro %}

{% macro duckdb__json_string_value(json_expr) -%}
  (case when json_type({{ json_expr }}) = 'VARCHAR' then json_extract_string({{ json_expr }}, '$') end)
{%- endmacro %}

{% macro postgres__json_string_value(json_expr) -%}
  (case when jsonb_typeof({{ json_expr }}) = 'string' then {{ json_expr }} #>> '{}' end)
{%- endmacro %}


{# true only for JSON `true` (a string "true" is not); never null. #}
{% macro json_is_true(json_expr) -%}
  coalesce({{ json_kind(json_expr) }} = 'boolean' and {{ json_to_text(json_expr) }} = 'true', false)
{%- endmacro %}


{# A JSON value serialised as text (for people reading the rejects table). #}
{% macro json_to_text(json_expr) -%}
  {{ return(adapter.dispatch('json_to_text', 'pricing_ops')(json_expr)) }}
{%- endmacro %}

{% macro default__json_to_text(json_expr) -%}
  cast({{ json_expr }} as text)
{%- endmacro %}


{# Parse a text as JSON; SQL null when it is not valid JSON (never an error).
   PostgreSQL 15 has no non-throwing cast (pg_input_is_valid is 16+): it calls the function that
   `create_try_parse_json_function()` (on-run-start) keeps in the staging schema. #}
{% macro try_parse_json(text_expr) -%}
  {{ return(adapter.dispatch('try_parse_json', 'pricing_ops')(text_expr)) }}
{%- endmacro %}

{% macro duckdb__try_parse_json(text_expr) -%}
  {#- DuckDB's parser also accepts trailing commas, NaN/Infinity and \u0000, which JSON (and
      Postgres) refuse: with string literals blanked out, those are refused here as well, so a
      string decodes the same on both engines. -#}
  (case
     when json_valid({{ text_expr }})
       and not regexp_matches(
         regexp_replace(
           regexp_replace({{ text_expr }}, '"(\\.|[^"\\])*"', '""', 'g'),
           'true|false|null', '0', 'g'),
         ',\s*[\]}]|[A-DF-Za-df-z]')
       and not regexp_matches({{ text_expr }}, '(^|[^\\])(\\\\)*\\u0000')
     then cast({{ text_expr }} as json)
   end)
{%- endmacro %}

{% macro postgres__try_parse_json(text_expr) -%}
  {{ _try_parse_jsonb_function() }}({{ text_expr }})
{%- endmacro %}

{% macro _try_parse_jsonb_function() -%}
  {{ adapter.quote(target.schema ~ '_staging') }}.pricing_ops_try_parse_jsonb
{%- endmacro %}


{# on-run-start, after the staging schema exists: the parser Postgres lacks, replaced by each run
   (so a change here reaches the warehouse), where every session of the run finds it (a model's
   unit tests as well as the model). No-op on DuckDB. #}
{% macro create_try_parse_json_function() -%}
  {{ return(adapter.dispatch('create_try_parse_json_function', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__create_try_parse_json_function() -%}
{%- endmacro %}

{% macro postgres__create_try_parse_json_function() -%}
  create or replace function {{ _try_parse_jsonb_function() }}(value text) returns jsonb
  language plpgsql immutable as $fn$
  begin
    return value::jsonb;
  exception when others then
    return null;
  end
  $fn$
{%- endmacro %}


{# A lateral FROM item with one row per element of a JSON array: `<alias>.entry` (JSON) and
   `<alias>.entry_index` (bigint, 1-based, the element's position). Nothing for an empty array. #}
{% macro json_array_entries(json_array_expr, alias) -%}
  {{ return(adapter.dispatch('json_array_entries', 'pricing_ops')(json_array_expr, alias)) }}
{%- endmacro %}

{% macro duckdb__json_array_entries(json_array_expr, alias) -%}
  {#- json_each keeps JSON nulls as JSON (a cast to json[] would turn them into SQL nulls). -#}
  lateral (
    select
      elements.value as entry,
      cast(elements.key as bigint) + 1 as entry_index
    from json_each({{ json_array_expr }}) as elements
  ) as {{ alias }}
{%- endmacro %}

{% macro postgres__json_array_entries(json_array_expr, alias) -%}
  lateral (
    select
      elements.value as entry,
      elements.position as entry_index
    from jsonb_array_elements({{ json_array_expr }}) with ordinality as elements (value, position)
  ) as {{ alias }}
{%- endmacro %}


{# Number of elements of a JSON array. #}
{% macro json_array_length(json_array_expr) -%}
  {{ return(adapter.dispatch('json_array_length', 'pricing_ops')(json_array_expr)) }}
{%- endmacro %}

{% macro duckdb__json_array_length(json_array_expr) -%}
  json_array_length({{ json_array_expr }})
{%- endmacro %}

{% macro postgres__json_array_length(json_array_expr) -%}
  jsonb_array_length({{ json_array_expr }})
{%- endmacro %}
