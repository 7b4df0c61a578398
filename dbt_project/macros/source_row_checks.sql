{#- Why a source row is rejected (null when it is sound): one rule per table, used by its staging
    model (which keeps only sound rows) and by source_row_rejects (which lists the others). -#}

{# A telemetry window that cannot be a window: it would become a provider's latest window and
   could auto-pause it. #}
{% macro telemetry_reject_reason(alias) -%}
  case
    when {{ alias }}.window_end < {{ alias }}.window_start then 'window_end_before_start'
    when {{ alias }}.guardrail_checks < 0 or {{ alias }}.guardrail_failures < 0
      or {{ alias }}.replay_total < 0 or {{ alias }}.replay_failures < 0 then 'negative_count'
  end
{%- endmacro %}

{# ISO 4217 is three upper-case letters: a lower-case `usd` is normalised, anything else rejected. #}
{% macro normalised_currency(alias) -%}
  upper(trim(cast({{ alias }}.currency as {{ text_type() }})))
{%- endmacro %}

{# An order whose money cannot be counted: a currency that is not a code, a negative total. #}
{% macro order_reject_reason(alias) -%}
  case
    when {{ alias }}.currency is null
      or not {{ regex_matches(normalised_currency(alias), '[A-Z]{3}') }} then 'currency_invalid'
    when {{ alias }}.total < 0 then 'negative_total'
  end
{%- endmacro %}
