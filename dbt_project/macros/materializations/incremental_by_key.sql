{#-
  The one incremental mechanism: `materialized='incremental_by_key', unique_key=<column or list>`.

  A model states its key (the grain its rows are replaced at: all rows of a key are recomputed
  together; one key may hold many rows). Each run:
  1. plan (`incremental_plan`): rebuild whole when there is no table or no recorded state yet, on
     `--full-refresh`, when the model's SQL changed, when the as-of date moved and the model's own
     SQL calls as_of_date(), or when an upstream incremental model was rebuilt whole since this one
     last read it. `full_refresh=false` (the snapshot history) is never rebuilt while its table exists.
  2. touched keys: from the model's own `depends_on` (never strings), every upstream model whose
     config names a clock column (`meta: {clock: loaded_at}`: a stamp that grows with every write)
     contributes the keys of its rows past this model's watermark for it. An upstream without every
     key column reaches them through another upstream that has them and the upstream's own key (the
     journey state's journey_id through the exposures' (event_id, journey_id)).
  3. the model's SQL computes the rows of the touched keys (`{{ touched() }}` restricts an input to
     them, `{{ new_rows(ref(...)) }}` reads only an upstream's rows past the watermark; both read
     everything in a full build), the keys it returns join the touched ones, and
     `replace_touched_keys` (per adapter) swaps them in: delete + insert here; an engine without
     row deletes overwrites the partitions of the touched keys instead.
  4. the watermark (each clocked upstream's max clock, read before step 2) goes to
     `<schema>_staging.incremental_state` in the same transaction as the rows
     (macros/materializations/incremental_state.sql).
  5. a model whose yml says `meta: {changelog: true}` also appends the rows it replaced (sign -1)
     and the rows it wrote (sign +1) to `<schema>_staging.<model>__changes`, stamped with the run
     clock: a model downstream that sums over it reads `{{ changes(ref(...)) }}` (those past its
     watermark; every row, signed +1, in a full build) and adds them to its own rows, instead of
     summing the whole upstream again. Entries every reader has absorbed are trimmed.
  A model whose rows others read incrementally stamps them with `{{ run_clock() }}` as its clock
  column, or carries a clock from its input (`loaded_at`).
-#}

{% materialization incremental_by_key, default %}
  {%- set keys = pricing_ops.incremental_key_columns() -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set plan = pricing_ops.incremental_plan() -%}
  {%- set touched_relation = pricing_ops.incremental_scratch_relation('__touched') -%}
  {%- set new_relation = pricing_ops.incremental_scratch_relation('__new') -%}
  {%- set changelog = pricing_ops.incremental_changelog_relation() if (model.config.meta or {}).get('changelog') else none -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
  {%- for leftover in [intermediate_relation, backup_relation, touched_relation, new_relation] -%}
    {%- do adapter.drop_relation(leftover) -%}
  {%- endfor -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {#- An overlapping build of this model waits here for this one to commit (macros/lock_incremental_target.sql). -#}
  {%- do pricing_ops.lock_incremental_target(existing_relation) -%}

  {#- Read before anything else: rows arriving while this runs are past the recorded watermark. -#}
  {%- set clocks = pricing_ops.incremental_clocks(plan.upstreams) -%}

  {%- if plan.full -%}
    {%- do log(model.name ~ ": built whole (" ~ plan.reason ~ ")", info=true) -%}
    {%- set build_relation = target_relation if existing_relation is none else intermediate_relation -%}
    {%- call statement('main') -%}
      {{ get_create_table_as_sql(False, build_relation, sql) }}
    {%- endcall -%}
    {%- if existing_relation is not none -%}
      {%- do adapter.rename_relation(existing_relation, backup_relation.incorporate(type=existing_relation.type)) -%}
      {%- do adapter.rename_relation(intermediate_relation, target_relation) -%}
      {%- do adapter.drop_relation(backup_relation.incorporate(type=existing_relation.type)) -%}
    {%- endif -%}
    {%- do pricing_ops.refuse_null_keys(target_relation, keys) -%}
    {%- do pricing_ops.create_incremental_indexes(target_relation, keys) -%}
    {%- if changelog is not none -%}
      {%- do pricing_ops.start_changelog(changelog, target_relation) -%}
    {%- endif -%}
  {%- else -%}
    {%- do pricing_ops.collect_touched_keys(plan, keys, touched_relation, target_relation) -%}
    {%- call statement('new_rows') -%}
      create table {{ new_relation }} as {{ sql }}
    {%- endcall -%}
    {%- do pricing_ops.refuse_null_keys(new_relation, keys) -%}
    {%- call statement('touched_by_new_rows') -%}
      insert into {{ touched_relation }} ({{ keys | join(', ') }})
      select distinct {{ keys | join(', ') }} from {{ new_relation }}
    {%- endcall -%}
    {%- if changelog is not none -%}
      {%- do pricing_ops.append_changelog(changelog, target_relation, new_relation, touched_relation, keys) -%}
    {%- endif -%}
    {%- do pricing_ops.replace_touched_keys(target_relation, new_relation, touched_relation, keys) -%}
    {%- do pricing_ops.ensure_not_null_constraints(target_relation) -%}
  {%- endif -%}
  {%- if changelog is not none -%}
    {%- do pricing_ops.trim_changelog(changelog) -%}
  {%- endif -%}

  {%- do pricing_ops.save_incremental_state(plan, clocks) -%}

  {%- do apply_grants(target_relation, config.get('grants'), should_revoke=should_revoke(existing_relation, plan.full)) -%}
  {%- do persist_docs(target_relation, model) -%}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  -- `COMMIT` happens here
  {%- do adapter.commit() -%}
  {%- for scratch in [touched_relation, new_relation] -%}
    {%- do adapter.drop_relation(scratch) -%}
  {%- endfor -%}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}


{# The model's key columns (config unique_key: a column or a list). #}
{% macro incremental_key_columns() -%}
  {%- set key = config.get('unique_key') -%}
  {%- if not key and not execute -%}
    {{ return([]) }}
  {%- elif not key -%}
    {{ exceptions.raise_compiler_error(
         "model " ~ model.name ~ ": materialized='incremental_by_key' needs unique_key (the column or columns "
         ~ "whose rows are replaced together), e.g. config(materialized='incremental_by_key', unique_key='journey_id')") }}
  {%- endif -%}
  {{ return([key] if key is string else key) }}
{%- endmacro %}


{# dbt's is_incremental() knows only its own materialization: true here too when this run adds to
   the table instead of building it whole. #}
{% macro is_incremental() -%}
  {%- if execute and model.config.materialized == 'incremental_by_key' -%}
    {{ return(not pricing_ops.incremental_plan().full) }}
  {%- endif -%}
  {{ return(dbt.is_incremental()) }}
{%- endmacro %}


{# The upstream models (from depends_on) whose config names a clock column: [{name, alias, clock,
   key (their unique_key as a list), incremental}]. #}
{% macro incremental_upstreams() -%}
  {%- set out = [] -%}
  {%- for unique_id in model.depends_on.nodes -%}
    {%- set node = graph.nodes.get(unique_id) -%}
    {%- if node is not none and node.resource_type == 'model' and (node.config.meta or {}).get('clock') -%}
      {%- set key = node.config.get('unique_key') -%}
      {%- do out.append({
            'name': node.name,
            'alias': node.alias or node.name,
            'clock': node.config.meta.clock,
            'key': [key] if key is string else (key or []),
            'incremental': node.config.materialized == 'incremental_by_key',
            'changelog': node.config.meta.get('changelog', false)}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(out) }}
{%- endmacro %}


{# {full, reason, state (this model's row or {}), upstreams, uses_as_of}: the same answer at compile
   time (is_incremental, touched, new_rows) and in the materialization. #}
{% macro incremental_plan() -%}
  {%- set upstreams = incremental_upstreams() -%}
  {%- set uses_as_of = 'macro.pricing_ops.as_of_date' in model.depends_on.macros
                       or 'macro.pricing_ops.as_of_date_text' in model.depends_on.macros -%}
  {%- set plan = {'full': true, 'reason': '', 'state': {}, 'upstreams': upstreams, 'uses_as_of': uses_as_of} -%}
  {%- if not execute -%}
    {{ return(plan) }}
  {%- endif -%}
  {%- set plans = incremental_invocation_cache().plans -%}
  {%- if model.unique_id in plans -%}
    {{ return(plans[model.unique_id]) }}
  {%- endif -%}
  {%- do plans.update({model.unique_id: plan}) -%}
  {%- set relation = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {%- set has_state = incremental_state_exists() -%}
  {#- The upstreams' rows too when this table is new: the watermark records how they were built. -#}
  {%- set states = incremental_state_rows([model.name] + upstreams | map(attribute='name') | list)
                   if has_state else {} -%}
  {%- set state = states.get(model.name, {}) -%}
  {%- do plan.update({'state': state, 'states': states}) -%}
  {%- set rebuilt = [] -%}
  {%- for upstream in upstreams if upstream.incremental -%}
    {%- set seen = state.get('watermark', {}).get(upstream.name, {}).get('rebuilt_at') -%}
    {%- if seen != states.get(upstream.name, {}).get('rebuilt_at') -%}
      {%- do rebuilt.append(upstream.name) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set missing = missing_declared_columns(relation) if state and relation is not none and relation.type == 'table' else [] -%}
  {%- if relation is none -%}
    {%- do plan.update({'reason': 'no table yet'}) -%}
  {%- elif relation.type != 'table' -%}
    {%- do plan.update({'reason': 'a ' ~ relation.type ~ ' in its place'}) -%}
  {%- elif should_full_refresh() -%}
    {%- do plan.update({'reason': '--full-refresh'}) -%}
  {%- elif config.get('full_refresh') is false -%}
    {%- do plan.update({'full': false}) -%}
  {%- elif not state -%}
    {%- do plan.update({'reason': 'no incremental state recorded for it'}) -%}
  {%- elif missing -%}
    {#- A table built before a column was added (a warehouse of an older release). -#}
    {%- do plan.update({'reason': 'its table lacks ' ~ missing | join(', ')}) -%}
  {%- elif state.checksum != model.checksum.checksum -%}
    {%- do plan.update({'reason': 'its SQL changed'}) -%}
  {%- elif uses_as_of and state.as_of_date != as_of_date_text() -%}
    {%- do plan.update({'reason': 'the as-of date moved from ' ~ state.as_of_date ~ ' to ' ~ as_of_date_text()}) -%}
  {%- elif rebuilt -%}
    {%- do plan.update({'reason': rebuilt | join(', ') ~ ' rebuilt whole since it last read them'}) -%}
  {%- else -%}
    {%- do plan.update({'full': false}) -%}
  {%- endif -%}
  {{ return(plan) }}
{%- endmacro %}


{# What this dbt invocation already asked: {'plans': {model unique_id: plan}, 'state_exists': bool}.
   A model's plan is made once (its compiled SQL and its materialization ask for it several times,
   and each answer costs catalog and state queries, each a job of its own on Spark). Kept in the
   invocation's graph, keyed by the invocation: a dbt runner may reuse one manifest. #}
{% macro incremental_invocation_cache() -%}
  {%- set cache = graph.get('pricing_ops_incremental') -%}
  {%- if cache is none or cache.invocation_id != invocation_id -%}
    {%- set cache = {'invocation_id': invocation_id, 'plans': {}, 'state_exists': false} -%}
    {%- do graph.update({'pricing_ops_incremental': cache}) -%}
  {%- endif -%}
  {{ return(cache) }}
{%- endmacro %}


{# The columns the model's yml declares that `relation` does not have. #}
{% macro missing_declared_columns(relation) -%}
  {%- set have = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
  {{ return(model.columns.keys() | map('lower') | reject('in', have) | list) }}
{%- endmacro %}


{# A scratch table of this model's run, beside the staging models. #}
{% macro incremental_scratch_relation(suffix) -%}
  {{ return(api.Relation.create(database=this.database, schema=target.schema ~ '_staging',
                                identifier=this.identifier ~ suffix, type='table')) }}
{%- endmacro %}


{# In the model's SQL: true for the rows of the keys this run replaces (every row in a full build).
   `columns`: the input's expressions for the key columns, in their order (default: the key's names). #}
{% macro touched(columns=none) -%}
  {%- if is_incremental() -%}
    {%- set keys = incremental_key_columns() -%}
    {%- set exprs = keys if columns is none else ([columns] if columns is string else columns) -%}
    {{ in_keys(exprs, incremental_scratch_relation('__touched'), keys) }}
  {%- else -%}
    1 = 1
  {%- endif -%}
{%- endmacro %}


{# In the model's SQL: the rows of `relation` (a ref of a clocked upstream) past this model's
   watermark for it; all of them in a full build. #}
{% macro new_rows(relation) -%}
  {%- if not is_incremental() -%}
    {{ return(relation) }}
  {%- endif -%}
  {%- set matches = incremental_upstreams() | selectattr('alias', 'equalto', relation.identifier) | list -%}
  {%- if not matches -%}
    {{ exceptions.raise_compiler_error(
         "model " ~ model.name ~ ": new_rows(" ~ relation ~ ") needs an upstream model whose config names its "
         ~ "clock column (meta: {clock: <column>})") }}
  {%- endif -%}
  {%- set through = incremental_plan().state.get('watermark', {}).get(matches[0].name, {}).get('through') -%}
  (select * from {{ relation }} where {{ _clock_past(matches[0].clock, through) }})
{%- endmacro %}

{# In the model's SQL: the changes of `relation` (a ref of an upstream with `meta: {changelog: true}`)
   past this model's watermark for it, each row of it with `change_sign` -1 (a row it replaced) or
   +1 (a row it wrote); in a full build every row of it, +1. A sum of `change_sign * x` is what
   the sum of x over the upstream moved by since this model last ran. #}
{% macro changes(relation) -%}
  {%- if not is_incremental() -%}
    {{ return('(select upstream_rows.*, 1 as change_sign from ' ~ relation ~ ' as upstream_rows)') }}
  {%- endif -%}
  {%- set matches = incremental_upstreams() | selectattr('alias', 'equalto', relation.identifier) | list -%}
  {%- if not (matches and matches[0].changelog) -%}
    {{ exceptions.raise_compiler_error(
         "model " ~ model.name ~ ": changes(" ~ relation ~ ") needs an upstream model whose yml says "
         ~ "meta: {clock: <column>, changelog: true}") }}
  {%- endif -%}
  {%- set through = incremental_plan().state.get('watermark', {}).get(matches[0].name, {}).get('through') -%}
  (select * from {{ _changelog_of(matches[0].name) }} where {{ _clock_past('change_clock', through) }})
{%- endmacro %}

{% macro incremental_changelog_relation(model_name=none) -%}
  {{ return(api.Relation.create(database=this.database, schema=target.schema ~ '_staging',
                                identifier=(model_name or this.identifier) ~ '__changes', type='table')) }}
{%- endmacro %}

{% macro _changelog_of(model_name) -%}
  {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                 | selectattr('name', 'equalto', model_name) | first -%}
  {{ incremental_changelog_relation(node.alias or node.name) }}
{%- endmacro %}

{% macro _clock_past(clock, through) -%}
  {%- if through -%} {{ clock }} > {{ instant_literal(through) }} {%- else -%} {{ clock }} is not null {%- endif -%}
{%- endmacro %}


{# {upstream name: its clock's max now, ISO Z text or none}, in one query. #}
{% macro incremental_clocks(upstreams) -%}
  {%- set out = {} -%}
  {%- if execute and upstreams -%}
    {%- set sql -%}
      select
      {%- for upstream in upstreams %}
        (select {{ utc_instant_text('max(' ~ upstream.clock ~ ')') }} from {{ ref(upstream.name) }}) as clock_{{ loop.index }}
        {{- ',' if not loop.last }}
      {%- endfor %}
    {%- endset -%}
    {%- set row = run_query(sql).rows[0] -%}
    {%- for upstream in upstreams -%}
      {%- do out.update({upstream.name: row[loop.index0]}) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(out) }}
{%- endmacro %}


{# Fill `touched` with the keys of the upstream rows past the watermark (step 2 above). #}
{% macro collect_touched_keys(plan, keys, touched, target_relation) -%}
  {%- set key_list = keys | join(', ') -%}
  {%- call statement('create_touched') -%}
    create table {{ touched }} as select {{ key_list }} from {{ target_relation }} where 1 = 0
  {%- endcall -%}
  {%- set columns = {} -%}
  {%- for unique_id in model.depends_on.nodes if plan.upstreams -%}
    {%- set node = graph.nodes.get(unique_id) -%}
    {%- if node is not none and node.resource_type in ['model', 'seed'] -%}
      {%- set names = adapter.get_columns_in_relation(ref(node.name)) | map(attribute='name') | map('lower') | list -%}
      {%- do columns.update({node.name: names}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for upstream in plan.upstreams -%}
    {%- set through = plan.state.get('watermark', {}).get(upstream.name, {}).get('through') -%}
    {%- set past = _clock_past(upstream.clock, through) -%}
    {%- if upstream.changelog and keys | reject('in', columns[upstream.name]) | list | length == 0 -%}
      {#- Its changes hold the keys its rows left as well as those they have now. -#}
      {%- call statement('touched_by_' ~ upstream.name) -%}
        insert into {{ touched }} ({{ key_list }})
        select distinct {{ key_list }} from {{ _changelog_of(upstream.name) }}
        where {{ _clock_past('change_clock', through) }}
      {%- endcall -%}
    {%- elif keys | reject('in', columns[upstream.name]) | list | length == 0 -%}
      {%- call statement('touched_by_' ~ upstream.name) -%}
        insert into {{ touched }} ({{ key_list }})
        select distinct {{ key_list }} from {{ ref(upstream.name) }} where {{ past }}
      {%- endcall -%}
    {%- else -%}
      {%- set wanted = keys + upstream.key -%}
      {%- set bridges = [] -%}
      {%- for name, names in columns.items() if name != upstream.name and upstream.key
            and wanted | reject('in', names) | list | length == 0 -%}
        {%- do bridges.append(name) -%}
      {%- endfor -%}
      {%- if not bridges -%}
        {{ exceptions.raise_compiler_error(
             "model " ~ model.name ~ ": its upstream " ~ upstream.name ~ " has no column " ~ keys | join(', ')
             ~ " and no other upstream has both those and " ~ upstream.name ~ "'s unique_key " ~ upstream.key
             ~ ": the keys its changes touch cannot be found. Read a model that has them, or choose a coarser unique_key.") }}
      {%- endif -%}
      {%- set upstream_key = upstream.key | join(', ') -%}
      {%- call statement('touched_by_' ~ upstream.name) -%}
        insert into {{ touched }} ({{ key_list }})
        select distinct {{ key_list }} from {{ ref(bridges[0]) }}
        where {{ in_keys(upstream.key, '(select ' ~ upstream_key ~ ' from ' ~ ref(upstream.name) ~ ' where ' ~ past ~ ')', upstream.key) }}
      {%- endcall -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do pricing_ops.analyze_scratch(touched) -%}
{%- endmacro %}


{# This model's row of the state table, in the run's transaction. #}
{% macro save_incremental_state(plan, clocks) -%}
  {%- set watermark = {} -%}
  {%- for upstream in plan.upstreams -%}
    {%- do watermark.update({upstream.name: {
          'through': clocks.get(upstream.name),
          'rebuilt_at': plan.get('states', {}).get(upstream.name, {}).get('rebuilt_at')}}) -%}
  {%- endfor -%}
  {%- set row = {
        'model_name': model.name,
        'checksum': model.checksum.checksum,
        'rebuilt_at': run_clock_text() if plan.full else plan.state.get('rebuilt_at'),
        'watermark': watermark,
        'as_of_date': as_of_date_text() if plan.uses_as_of else none,
        'built_at': plan.state.get('built_at'),
        'inputs': none,
        'invocation_id': invocation_id} -%}
  {%- do replace_incremental_state_rows([row]) -%}
{%- endmacro %}


{# A table built whole starts its changelog empty: its readers rebuild whole too (it was rebuilt). #}
{% macro start_changelog(changelog, target_relation) -%}
  {%- do adapter.drop_relation(changelog) -%}
  {%- call statement('start_changelog') -%}
    create table {{ changelog }} as
    select current_rows.*, 1 as change_sign, {{ run_clock() }} as change_clock
    from {{ target_relation }} as current_rows
    where 1 = 0
  {%- endcall -%}
{%- endmacro %}

{# The rows about to be replaced (-1) and their replacements (+1), before the replace. #}
{% macro append_changelog(changelog, target_relation, new_relation, touched_relation, keys) -%}
  {%- if adapter.get_relation(database=changelog.database, schema=changelog.schema, identifier=changelog.identifier) is none -%}
    {%- do pricing_ops.start_changelog(changelog, target_relation) -%}
  {%- endif -%}
  {%- set column_list = adapter.get_columns_in_relation(target_relation) | map(attribute='name') | map('lower') | join(', ') -%}
  {%- call statement('changelog_replaced') -%}
    insert into {{ changelog }} ({{ column_list }}, change_sign, change_clock)
    select {{ column_list }}, -1, {{ run_clock() }} from {{ target_relation }}
    where {{ in_keys(keys, touched_relation, keys) }}
  {%- endcall -%}
  {%- call statement('changelog_written') -%}
    insert into {{ changelog }} ({{ column_list }}, change_sign, change_clock)
    select {{ column_list }}, 1, {{ run_clock() }} from {{ new_relation }}
  {%- endcall -%}
{%- endmacro %}

{# Drop the changes every model reading them has absorbed (those that never built read everything
   when they first run, whole). #}
{% macro trim_changelog(changelog) -%}
  {%- set readers = [] -%}
  {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and model.unique_id in node.depends_on.nodes -%}
    {%- do readers.append(node.name) -%}
  {%- endfor -%}
  {%- set states = incremental_state_rows(readers) if readers else {} -%}
  {%- set seen = [] -%}
  {%- for name, state in states.items() -%}
    {%- do seen.append(state.watermark.get(model.name, {}).get('through') or '') -%}
  {%- endfor -%}
  {%- if '' not in seen -%}
    {%- do pricing_ops.delete_absorbed_changes(changelog, seen | min if seen else none) -%}
  {%- endif -%}
{%- endmacro %}

{# A model's rows must have a key: a null never equals the touched keys, so its rows would never be
   replaced (and pile up). Refused with the model and column named. #}
{% macro refuse_null_keys(relation, keys) -%}
  {%- set found = run_query("select " ~ keys | join(', ') ~ " from " ~ relation ~ " where "
                            ~ keys | join(' is null or ') ~ " is null limit 1") -%}
  {%- if found.rows | length -%}
    {{ exceptions.raise_compiler_error(
         "model " ~ model.name ~ ": a row has a null in its unique_key " ~ keys | join(', ')
         ~ " (rows are replaced by key): give the key a value in the model's SQL, e.g. coalesce(<column>, 'unknown')") }}
  {%- endif -%}
{%- endmacro %}


{#- Per adapter: the parts an engine may do its own way. -#}

{# Drop the changes up to `through` (all of them when none). #}
{% macro delete_absorbed_changes(changelog, through) -%}
  {{ return(adapter.dispatch('delete_absorbed_changes', 'pricing_ops')(changelog, through)) }}
{%- endmacro %}

{% macro default__delete_absorbed_changes(changelog, through) -%}
  {%- call statement('delete_absorbed_changes') -%}
    delete from {{ changelog }}
    {%- if through %} where change_clock <= {{ instant_literal(through) }}{% endif %}
  {%- endcall -%}
{%- endmacro %}


{# Swap the touched keys' rows for the new ones. The default deletes and inserts; an engine
   without row deletes rewrites the partitions holding the touched keys. #}
{% macro replace_touched_keys(target_relation, new_relation, touched_relation, keys) -%}
  {{ return(adapter.dispatch('replace_touched_keys', 'pricing_ops')(target_relation, new_relation, touched_relation, keys)) }}
{%- endmacro %}

{% macro default__replace_touched_keys(target_relation, new_relation, touched_relation, keys) -%}
  {%- set columns = adapter.get_columns_in_relation(target_relation) | map(attribute='name') | list -%}
  {%- set arriving = adapter.get_columns_in_relation(new_relation) | map(attribute='name') | map('lower') | list -%}
  {%- set missing = columns | map('lower') | reject('in', arriving) | list -%}
  {%- if missing or arriving | length != columns | length -%}
    {{ exceptions.raise_compiler_error(
         "model " ~ model.name ~ ": its SQL returns columns " ~ arriving ~ " but " ~ target_relation ~ " has "
         ~ columns ~ ": run it with --full-refresh to rebuild the table") }}
  {%- endif -%}
  {%- set column_list = columns | map('lower') | join(', ') -%}
  {%- call statement('delete_touched') -%}
    delete from {{ target_relation }}
    where {{ in_keys(keys, touched_relation, keys) }}
  {%- endcall -%}
  {%- call statement('main') -%}
    insert into {{ target_relation }} ({{ column_list }})
    select {{ column_list }} from {{ new_relation }}
  {%- endcall -%}
{%- endmacro %}


{# Indexes of a table built whole: on Postgres its key (the deletes and the touched-key lookups),
   its clock (the watermark's max, the new rows) and the model's `indexes` config. DuckDB's zone
   maps serve without (an index there slows every insert): none there, `indexes` included. #}
{% macro create_incremental_indexes(relation, keys) -%}
  {{ return(adapter.dispatch('create_incremental_indexes', 'pricing_ops')(relation, keys)) }}
{%- endmacro %}

{% macro default__create_incremental_indexes(relation, keys) -%}
{%- endmacro %}

{% macro postgres__create_incremental_indexes(relation, keys) -%}
  {%- set clock = (model.config.meta or {}).get('clock') -%}
  {%- call statement('key_index') -%}
    create index if not exists {{ adapter.quote(relation.identifier ~ '__key') }} on {{ relation }} ({{ keys | join(', ') }})
  {%- endcall -%}
  {%- if clock -%}
    {%- call statement('clock_index') -%}
      create index if not exists {{ adapter.quote(relation.identifier ~ '__clock') }} on {{ relation }} ({{ clock }})
    {%- endcall -%}
  {%- endif -%}
  {%- do create_indexes(relation) -%}
  {%- do pricing_ops.analyze_scratch(relation) -%}
{%- endmacro %}


{# True for the rows whose `exprs` (a list: the columns of a key, in order) are among the `key_columns`
   of `keys_relation` (a relation or a parenthesized query). Postgres plans `= any(array(...))` of
   one column as index lookups, where a semi-join on an estimate would scan a whole large table. #}
{% macro in_keys(exprs, keys_relation, key_columns) -%}
  {{ return(adapter.dispatch('in_keys', 'pricing_ops')(exprs, keys_relation, key_columns)) }}
{%- endmacro %}

{% macro default__in_keys(exprs, keys_relation, key_columns) -%}
  ({{ exprs | join(', ') }}) in (select {{ key_columns | join(', ') }} from {{ keys_relation }} as wanted_keys)
{%- endmacro %}

{% macro postgres__in_keys(exprs, keys_relation, key_columns) -%}
  {%- if exprs | length == 1 -%}
    {{ exprs[0] }} = any(array(select {{ key_columns[0] }} from {{ keys_relation }} as wanted_keys))
  {%- else -%}
    {{ default__in_keys(exprs, keys_relation, key_columns) }}
  {%- endif -%}
{%- endmacro %}


{# Planner statistics of a new table (Postgres: a join on a table it knows nothing of may scan). #}
{% macro analyze_scratch(relation) -%}
  {{ return(adapter.dispatch('analyze_scratch', 'pricing_ops')(relation)) }}
{%- endmacro %}

{% macro default__analyze_scratch(relation) -%}
{%- endmacro %}

{% macro postgres__analyze_scratch(relation) -%}
  {%- call statement('analyze_' ~ relation.identifier) -%}
    analyze {{ relation }}
  {%- endcall -%}
{%- endmacro %}
