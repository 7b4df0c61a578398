{#-
  Post-hook of every mart: BI readers get SELECT on the marts and nothing else (contract section 3).
  dbt's `grants` config fails when the role is missing, and a fresh or local warehouse has no
  bi_reader, so the grant is guarded by a check of pg_roles. Nothing to grant on DuckDB.
-#}
{% macro grant_select_to_bi_reader() -%}
  {{ return(adapter.dispatch('grant_select_to_bi_reader', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__grant_select_to_bi_reader() -%}
{%- endmacro %}

{% macro postgres__grant_select_to_bi_reader() -%}
  do $grant$
  begin
    if exists (select 1 from pg_roles where rolname = 'bi_reader') then
      grant select on {{ this }} to bi_reader;
    end if;
  end
  $grant$
{%- endmacro %}

{#-
  on-run-end: USAGE on the marts schema, once per run. Granted from each mart's post-hook, two dbt
  threads updating the same schema row at once fail with "tuple concurrently updated".
-#}
{% macro grant_marts_schema_usage_to_bi_reader() -%}
  {{ return(adapter.dispatch('grant_marts_schema_usage_to_bi_reader', 'pricing_ops')()) }}
{%- endmacro %}

{% macro default__grant_marts_schema_usage_to_bi_reader() -%}
{%- endmacro %}

{% macro postgres__grant_marts_schema_usage_to_bi_reader() -%}
  do $grant$
  begin
    if exists (select 1 from pg_roles where rolname = 'bi_reader') then
      grant usage on schema {{ adapter.quote(target.schema) }} to bi_reader;
    end if;
  end
  $grant$
{%- endmacro %}
