{#-
  Dates that never depend on the session TimeZone of DuckDB or PostgreSQL, nor on the process TZ:
  days are UTC dates of instants (contract section 3).
-#}

{# The UTC calendar date of a timestamptz. #}
{% macro utc_date(timestamptz_expr) -%}
  {{ return(adapter.dispatch('utc_date', 'pricing_ops')(timestamptz_expr)) }}
{%- endmacro %}

{% macro duckdb__utc_date(timestamptz_expr) -%}
  cast(timezone('UTC', {{ timestamptz_expr }}) as date)
{%- endmacro %}

{% macro postgres__utc_date(timestamptz_expr) -%}
  cast(({{ timestamptz_expr }} at time zone 'UTC') as date)
{%- endmacro %}


{# The instant a UTC date starts (00:00 UTC), a timestamptz: comparing instants against it spares a
   conversion of every row (`utc_date(x) <= d` is `x < utc_day_start(d + 1)`). #}
{% macro utc_day_start(date_expr) -%}
  {{ return(adapter.dispatch('utc_day_start', 'pricing_ops')(date_expr)) }}
{%- endmacro %}

{% macro duckdb__utc_day_start(date_expr) -%}
  timezone('UTC', cast({{ date_expr }} as timestamp))
{%- endmacro %}

{% macro postgres__utc_day_start(date_expr) -%}
  (cast({{ date_expr }} as timestamp) at time zone 'UTC')
{%- endmacro %}


{# A lateral FROM item with one row per date from start_date through end_date (both dates,
   inclusive) as `<alias>.<column>`; no rows when end_date is before start_date. #}
{% macro date_spine(start_date_expr, end_date_expr, alias, column) -%}
  {{ return(adapter.dispatch('date_spine', 'pricing_ops')(start_date_expr, end_date_expr, alias, column)) }}
{%- endmacro %}

{% macro duckdb__date_spine(start_date_expr, end_date_expr, alias, column) -%}
  {#- Plain timestamps (not timestamptz) so that no day is shifted by a session zone. -#}
  lateral (
    select cast(unnest(generate_series(
      cast({{ start_date_expr }} as timestamp),
      cast({{ end_date_expr }} as timestamp),
      interval 1 day
    )) as date) as {{ column }}
  ) as {{ alias }}
{%- endmacro %}

{% macro postgres__date_spine(start_date_expr, end_date_expr, alias, column) -%}
  lateral (
    select cast(days.day as date) as {{ column }}
    from generate_series(
      cast({{ start_date_expr }} as timestamp),
      cast({{ end_date_expr }} as timestamp),
      interval '1 day'
    ) as days (day)
  ) as {{ alias }}
{%- endmacro %}


{# The as-of date of the run as a SQL date literal: var `as_of_date` ('YYYY-MM-DD') when set, else
   env PRICING_OPS_AS_OF_DATE (what the Dagster asset passes: an env var keeps dbt's partial parse,
   a changed --vars would throw it away), else the UTC date at the start of the run. A literal, so
   every model of one run agrees on it even across midnight. A model calling it depends on the
   as-of date: the incremental mechanism rebuilds it whole when the date moves. #}
{% macro as_of_date() -%}
  cast('{{ as_of_date_text() }}' as date)
{%- endmacro %}

{# The as-of date as text 'YYYY-MM-DD' (see as_of_date). #}
{% macro as_of_date_text() -%}
  {%- set value = var('as_of_date', none) -%}
  {%- if value is none or (value | string | trim) == '' -%}
    {%- set value = env_var('PRICING_OPS_AS_OF_DATE', '') -%}
  {%- endif -%}
  {%- if value is none or (value | string | trim) == '' -%}
    {%- set value = run_started_at.astimezone(modules.pytz.utc).strftime('%Y-%m-%d') -%}
  {%- else -%}
    {#- YAML turns an unquoted 2026-11-26 into a date: its string form is the same text. -#}
    {%- set value = value | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
      {{ exceptions.raise_compiler_error(
           "dbt var as_of_date must be a date 'YYYY-MM-DD' (e.g. --vars '{as_of_date: \"2026-11-26\"}'), got '" ~ value ~ "'") }}
    {%- endif -%}
  {%- endif -%}
  {{ return(value) }}
{%- endmacro %}


{# The start of this dbt invocation as ISO text in UTC ('2026-03-06T01:00:00.123456Z'): the clock an
   incremental model stamps on the rows it writes (`changed_at`). #}
{% macro run_clock_text() -%}
  {{ return(run_started_at.astimezone(modules.pytz.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')) }}
{%- endmacro %}

{# The same instant as a timestamptz literal. #}
{% macro run_clock() -%}
  {{ instant_literal(run_clock_text()) }}
{%- endmacro %}

{# A timestamptz literal from ISO text with an offset or Z: the same instant on both engines. #}
{% macro instant_literal(text) -%}
  cast('{{ text }}' as {{ instant_type() }})
{%- endmacro %}

{# An instant as ISO text in UTC with microseconds and Z, whatever the session's time zone (a
   watermark read back into SQL with instant_literal). #}
{% macro utc_instant_text(timestamptz_expr) -%}
  {{ return(adapter.dispatch('utc_instant_text', 'pricing_ops')(timestamptz_expr)) }}
{%- endmacro %}

{% macro duckdb__utc_instant_text(timestamptz_expr) -%}
  strftime(timezone('UTC', {{ timestamptz_expr }}), '%Y-%m-%dT%H:%M:%S.%fZ')
{%- endmacro %}

{% macro postgres__utc_instant_text(timestamptz_expr) -%}
  to_char({{ timestamptz_expr }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
{%- endmacro %}
