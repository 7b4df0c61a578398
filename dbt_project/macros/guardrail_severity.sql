{#-
  The guardrail severity rule of contract section 3, once for every model that needs it.
  Thresholds are the dbt vars fed from GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES and
  GUARDRAIL_CRITICAL_REPLAY_FAILURES; a count ABOVE its threshold is critical.
-#}

{% macro _guardrail_threshold(var_name) -%}
  {%- set raw = var(var_name) -%}
  {%- if not modules.re.match('^[0-9]+$', raw | string | trim) -%}
    {{ exceptions.raise_compiler_error(
         "dbt var " ~ var_name ~ " must be a non-negative integer (settings GUARDRAIL_CRITICAL_*), got '" ~ raw ~ "'") }}
  {%- endif -%}
  {{ return(raw | string | trim | int) }}
{%- endmacro %}


{# 'critical' | 'warning' | 'ok' #}
{% macro guardrail_severity(guardrail_failures, replay_failures) -%}
  {%- set max_guardrail = _guardrail_threshold('guardrail_critical_guardrail_failures') -%}
  {%- set max_replay = _guardrail_threshold('guardrail_critical_replay_failures') -%}
  (case
     when {{ guardrail_failures }} > {{ max_guardrail }} or {{ replay_failures }} > {{ max_replay }} then 'critical'
     when {{ guardrail_failures }} > 0 or {{ replay_failures }} > 0 then 'warning'
     else 'ok'
   end)
{%- endmacro %}


{# Why the severity is what it is: each count that is above 0, with '> threshold' when it is above
   its threshold, e.g. 'guardrail_failures 3 > 2; replay_failures 1'; '' for ok. #}
{% macro guardrail_reasons(guardrail_failures, replay_failures) -%}
  {%- set max_guardrail = _guardrail_threshold('guardrail_critical_guardrail_failures') -%}
  {%- set max_replay = _guardrail_threshold('guardrail_critical_replay_failures') -%}
  coalesce(concat_ws('; ',
    case
      when {{ guardrail_failures }} > {{ max_guardrail }}
        then 'guardrail_failures ' || cast({{ guardrail_failures }} as {{ text_type() }}) || ' > {{ max_guardrail }}'
      when {{ guardrail_failures }} > 0
        then 'guardrail_failures ' || cast({{ guardrail_failures }} as {{ text_type() }})
    end,
    case
      when {{ replay_failures }} > {{ max_replay }}
        then 'replay_failures ' || cast({{ replay_failures }} as {{ text_type() }}) || ' > {{ max_replay }}'
      when {{ replay_failures }} > 0
        then 'replay_failures ' || cast({{ replay_failures }} as {{ text_type() }})
    end
  ), '')
{%- endmacro %}
