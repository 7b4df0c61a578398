"""The demo source as SQL: each of the five operational tables of contract section 2 from a seed.

Every value is a function of (seed, row number, `now`) computed in DuckDB SQL with `hash()`, so
the generation is vectorised (no Python loop over rows), scales to tens of millions of events and
gives identical rows for identical (events, seed, now) on the same DuckDB version. Times are
integer microseconds since the epoch until the last step (`make_timestamptz`), so no result
depends on the machine's or the session's time zone.

Pure: this module only writes SQL text. `resources/demo_source.py` runs it against a DuckDB file
or a PostgreSQL database (the I/O).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from models.demo import plan, truth
from models.demo.sql_literals import sql_list
from models.source_tables import (
    FULFILLMENT_PROVIDERS,
    ONBOARDING_JOURNEY_EVENTS,
    ONBOARDING_JOURNEYS,
    ORDERS,
    PROVIDER_GUARDRAIL_TELEMETRY,
    SourceTable,
)

US = 1_000_000  # microseconds per second
PAYLOAD_TABLE = "_demo_payloads"  # temp table of the generating connection (see `payload_catalogue`)


class DemoGenerator:
    """SQL (DuckDB dialect) that yields each source table's rows from (sizes, seed, now)."""

    def __init__(self, sizes: plan.DemoSizes, seed: int, now_us: int):
        self.sizes = sizes
        self.seed = seed
        self.now_us = now_us
        self.span_us = plan.HISTORY_DAYS * plan.DAY_S * US
        self.start_us = now_us - self.span_us
        self.active_us = plan.JOURNEY_ACTIVE_DAYS * plan.DAY_S * US
        self.journey_step_us = self.span_us // sizes.journeys
        variants = plan.all_variants()
        self.n_variants = len(variants)
        # Global variant number of each experiment's first variant: g = first_g[slug] + variant_no.
        self.slug_first_g = sql_list([next(g for g, row in enumerate(variants) if row[0] == s)
                                   for s in range(len(plan.EXPERIMENTS))])
        self.slug_n_variants = sql_list([len(e.variants) for e in plan.EXPERIMENTS])
        self.slug_buckets = plan.slug_buckets()
        self.payloads = plan.payload_catalogue()

    def describe(self) -> str:
        s = self.sizes
        return (f"{s.events:,} events, {s.journeys:,} journeys, {s.orders:,} orders, "
                f"{s.providers} providers (seed {self.seed})")

    def r(self, keys: str, salt: str, n: int | str) -> str:
        """Pseudo-random integer in [0, n) from the hash of (keys, seed, salt); `n` may be an
        expression. Each salt is a separate stream, so adding one never shifts the others."""
        # The salt goes in as a number: hashing a string constant on every row costs more.
        return f"(hash({keys}, {self.seed}, {zlib.crc32(salt.encode())}) % ({n})::UBIGINT)::BIGINT"

    def pick(self, keys: str, salt: str, weights: Sequence[int], forced: str | None = None) -> str:
        """Index of a weighted choice (one hash, one list lookup); `forced` (an index expression,
        or NULL) wins when not null, which is how the first rows cover every category."""
        buckets = plan.weighted_buckets(list(weights))
        weighted = f"{sql_list(buckets)}[{self.r(keys, salt, len(buckets))} + 1]"
        return f"coalesce({forced}, {weighted})" if forced else weighted

    def _choice(self, keys: str, salt: str, choices: Sequence[tuple[object, int]], index: str) -> str:
        """Value of a weighted choice; row `index` < len(choices) takes choice `index` (coverage)."""
        n = len(choices)
        forced = f"(case when {index} < {n} then {index} end)"
        i = self.pick(keys, salt, [w for _, w in choices], forced)
        return f"{sql_list([v for v, _ in choices], 'VARCHAR')}[{i} + 1]"

    def ts(self, us_expr: str) -> str:
        return f"make_timestamptz({us_expr})"

    def journey_created_us(self, j: str) -> str:
        """Journeys are numbered in creation order: journey j starts within the j-th of
        `journeys` equal steps of the history (ms precision)."""
        step = self.journey_step_us
        return f"(({self.start_us} + ({j} - 1) * {step} + {self.r(j, 'journey_created', step)}) // 1000 * 1000)"

    def order_created_us(self, o: str) -> str:
        """An order is placed up to half an hour before its journey starts; the few orders without
        a journey (numbers after the last journey) fall anywhere in the history."""
        lead = f"(60 + {self.r(o, 'order_lead', 1740)}) * {US}"
        return (f"(case when {o} <= {self.sizes.journeys} "
                f"then greatest({self.start_us}, {self.journey_created_us(o)} - {lead}) "
                f"else {self.start_us} + {self.r(o, 'order_created', self.span_us)} // 1000 * 1000 end)")

    def provider_platform(self, p: str) -> str:
        return self._choice(p, "platform", plan.PLATFORMS, p)

    @staticmethod
    def provider_id(p: str) -> str:
        return f"printf('prv_%03d', {p} + 1)"

    @staticmethod
    def order_id(o: str) -> str:
        return f"printf('ord_%08d', {o})"

    @staticmethod
    def journey_id(j: str) -> str:
        return f"printf('jrn_%08d', {j})"

    # Tables ----------------------------------------------------------------------------------

    def providers_sql(self) -> str:
        names = sql_list(plan.PROVIDER_NAMES, "VARCHAR")
        created = f"{self.now_us} - (60 * {plan.DAY_S} + {self.r('p', 'provider_created', 300 * plan.DAY_S)}) * {US}"
        return f"""
            select {self.provider_id('p')} as id, {names}[p + 1] as name,
                   {self.provider_platform('p')} as platform, {self.ts(created)} as created_at
            from (select range as p from range({plan.PROVIDER_COUNT}))"""

    def usual_variant(self, j: str, slug: str) -> str:
        """Variant number (within its experiment) a journey sees for a slug, switches aside. The
        SRM experiment assigns by skewed weights instead of evenly."""
        nv = f"{self.slug_n_variants}[{slug} + 1]"
        skewed = f"{sql_list(plan.weighted_buckets(truth.SRM_VARIANT_WEIGHTS))}[{self.r(f'{j}, {slug}', 'variant', sum(truth.SRM_VARIANT_WEIGHTS))} + 1]"
        return (f"(case when {slug} = {truth.slug_number(truth.SRM_SLUG)} then {skewed} "
                f"else {self.r(f'{j}, {slug}', 'variant', nv)} end)")

    def _known_effects(self, status_no: str, statuses: list[str]) -> str:
        """The order status after the known effects (an order o belongs to journey o; the first
        orders keep their forced status so every status stays present)."""
        booked = f"({statuses.index('paid')}, {statuses.index('fulfilled')})"
        cases = []
        for effect in truth.KNOWN_EFFECTS:
            # INTEGER like the slug column of the events, so the hash equals the events' one.
            on_variant = (f"{self.usual_variant('o', f'{truth.slug_number(effect.slug)}::INTEGER')} = "
                          f"{truth.variant_number(effect.slug, effect.variant_key)}")
            roll = self.r("o", f"known_effect_{effect.slug}", 100)
            if effect.to_booked_percent:
                cases.append(f"when {on_variant} and {status_no} not in {booked} and {roll} < "
                             f"{effect.to_booked_percent} then {statuses.index('paid')}")
            if effect.to_refunded_percent:
                cases.append(f"when {on_variant} and {status_no} in {booked} and {roll} < "
                             f"{effect.to_refunded_percent} then {statuses.index('refunded')}")
        return (f"(case when o <= {len(statuses)} or o > {self.sizes.journeys} then {status_no} "
                f"{' '.join(cases)} else {status_no} end)")

    def orders_sql(self) -> str:
        statuses = [s for s, _ in plan.ORDER_STATUSES]
        status_no = self.pick("o", "order_status", [w for _, w in plan.ORDER_STATUSES],
                              f"(case when o <= {len(statuses)} then o - 1 end)")
        status_no = self._known_effects(f"({status_no})", statuses)
        currency = self._choice("o", "currency", plan.CURRENCIES, "(o - 1)")
        channel = self._choice("o", "channel", plan.CHANNELS, "(o - 1)")
        provider_no = (f"(case when {self.r('o', 'no_provider', 100)} < {plan.PROVIDER_MISSING_PERCENT} then NULL "
                       f"else {self.r('o', 'provider', plan.PROVIDER_COUNT)} end)")
        # Cents: most orders 9.00-499.99, one in twenty a bundle of 200.00-4999.99.
        cents = (f"(case when {self.r('o', 'big_order', 100)} < 5 then 20000 + {self.r('o', 'total', 480_000)} "
                 f"else 900 + {self.r('o', 'total', 49_100)} end)")
        # How long after creation the last change happened, by status (wrapped to stay before `now`).
        delay_s = {
            "pending": f"{self.r('o', 'upd', 600)}",
            "paid": f"60 + {self.r('o', 'upd', 7_140)}",
            "fulfilled": f"3600 + {self.r('o', 'upd', 5 * plan.DAY_S)}",
            "refunded": f"{plan.DAY_S} + {self.r('o', 'upd', 13 * plan.DAY_S)}",
            "cancelled": f"600 + {self.r('o', 'upd', 3 * plan.DAY_S)}",
        }
        delay_case = " ".join(f"when {i} then {delay_s[s]}" for i, s in enumerate(statuses))
        return f"""
            select {self.order_id('o')} as id,
                   printf('SMP-%07d', 100000 + o) as order_number,
                   case when provider_no is not null then {self.provider_id('provider_no')} end as provider_id,
                   {sql_list(statuses, 'VARCHAR')}[status_no + 1] as status,
                   (cents::DECIMAL(18, 0) * 0.01)::DECIMAL(12, 2) as total,
                   currency,
                   (case when status_no = {statuses.index('cancelled')} then 0
                         else (cents // 100) * (1 + {self.r('o', 'points', 3)}) end)::INTEGER
                       as loyalty_projection_points,
                   case when provider_no is not null then {self.provider_platform('provider_no')} end as platform,
                   channel,
                   {self.ts('created_us')} as created_at,
                   {self.ts(f'created_us + ((case status_no {delay_case} end) * {US}) % ({self.now_us} - created_us + 1)')}
                       as updated_at
            from (
                select o, {status_no} as status_no, {currency} as currency, {channel} as channel,
                       {provider_no} as provider_no, {cents} as cents, {self.order_created_us('o')} as created_us
                from (select range + 1 as o from range({self.sizes.orders}))
            )"""

    def journeys_sql(self) -> str:
        statuses = [name for name, _ in plan.JOURNEY_STATUSES_NEW]
        assert statuses == [name for name, _ in plan.JOURNEY_STATUSES_SETTLED]
        forced = f"(case when j <= {len(statuses)} then j - 1 end)"
        new = self.pick("j", "journey_status", [w for _, w in plan.JOURNEY_STATUSES_NEW], forced)
        settled = self.pick("j", "journey_status", [w for _, w in plan.JOURNEY_STATUSES_SETTLED], forced)
        risk = self._choice("j", "referral_risk", plan.REFERRAL_RISKS, "(j - 1)")
        progress = (f"(case {sql_list(statuses, 'VARCHAR')}[status_no + 1] "
                    f"when 'completed' then 100 "
                    f"when 'active' then 5 * (1 + {self.r('j', 'progress', 19)}) "
                    f"else 5 * {self.r('j', 'progress', 13)} end)::SMALLINT")
        # Last change: somewhere in the journey's active period (and not after now).
        updated = f"created_us + {self.r('j', 'journey_updated', f'least({self.now_us} - created_us, {self.active_us}) + 1')}"
        return f"""
            select {self.journey_id('j')} as id, {self.order_id('j')} as order_id,
                   {sql_list(statuses, 'VARCHAR')}[status_no + 1] as status, {progress} as progress_pct,
                   {risk} as referral_risk,
                   {self.ts('created_us')} as created_at,
                   {self.ts(updated)} as updated_at
            from (
                select *, case when {self.now_us} - created_us < {self.active_us} then {new} else {settled} end
                              as status_no
                from (select j, {self.journey_created_us('j')} as created_us
                      from (select range + 1 as j from range({self.sizes.journeys})))
            )"""

    def _event_times_sql(self, source: str) -> str:
        """Per-event attributes (integers) from a relation with column `k` (0-based generation
        number), passing its other columns through. Used twice: narrow, to number events in
        ingestion order, then in full to produce the rows.

        An event first gets its time, then a journey active at that time (journeys are numbered
        in creation order, so those started within JOURNEY_ACTIVE_DAYS before it are a range of
        numbers), then one or two of that journey's experiments.
        """
        n_dirty = len(plan.DIRTY_PAYLOAD_KINDS)
        n_other = len(plan.OTHER_EVENT_TYPES)
        day = plan.DAY_S * US
        span, active, n_journeys = self.span_us, self.active_us, self.sizes.journeys
        # Activity ramps up over the first JOURNEY_ACTIVE_DAYS (journeys from before the history
        # are not in it), then is flat: a mixture of a triangular and a uniform draw.
        ramp_ppm = round(1_000_000 * (active / 2) / (span - active / 2))
        t_raw = (f"case when {self.r('k', 'ramp', 1_000_000)} < {ramp_ppm} "
                 f"then {self.start_us} + floor({active} * sqrt({self.r('k', 'ramp_t', 1_000_000)} / 1000000.0))::BIGINT "
                 f"else {self.start_us + active} + {self.r('k', 'flat_t', span - active)} end")
        # Journeys started by t_raw: j <= (t_raw - start) // step; within the active period before it: j > ...
        step = self.journey_step_us
        j_hi = f"greatest(1, least({n_journeys}, (t_raw - {self.start_us}) // {step}))"
        j_lo = f"least(j_hi, greatest(1, (t_raw - {self.start_us + active}) // {step} + 1))"
        # The first rows are forced: every dirty kind, then every other event type.
        forced_other = f"(case when k >= {n_dirty} and k < {n_dirty + n_other} then k - {n_dirty} end)"
        other_type = self.pick("k", "other_type", [w for _, w in plan.OTHER_EVENT_TYPES], forced_other)
        is_exposure = (f"(k < {n_dirty} or (k >= {n_dirty + n_other} and "
                       f"{self.r('k', 'category', 1000)} >= {plan.OTHER_EVENT_PERMILLE}))")
        timed = f"""
            select *, greatest(t_raw, journey_created_us) // 1000 * 1000 as recorded_us  -- the app records ms
            from (
                select *, {self.journey_created_us('j')} as journey_created_us
                from (
                    select *, j_lo + {self.r('k', 'journey', 'j_hi - j_lo + 1')} as j
                    from (select *, {j_lo} as j_lo
                          from (select *, {j_hi} as j_hi from (select *, {t_raw} as t_raw from ({source}))))
                )
            )"""
        # Late events happened days or weeks before they reached the database.
        max_extra = (plan.LATE_MAX_S - plan.LATE_MIN_S) * US
        late = f"""
            select *, least({self.now_us}, recorded_us + coalesce(lateness_us, 0) + 200000
                            + {self.r('k', 'ingest_delay', plan.INGEST_DELAY_MAX_S * US)}) as ingested_us
            from (
                select *, case when is_late then {plan.LATE_MIN_S * US}
                               + {self.r('k', 'lateness', f'least({max_extra}, {self.now_us} - recorded_us - {plan.LATE_MIN_S * US})')}
                          end as lateness_us
                from (select *, {self.r('k', 'late', 1000)} < {plan.LATE_EVENT_PERMILLE}
                                and {self.now_us} - recorded_us > {2 * plan.LATE_MIN_S * US} as is_late
                      from ({timed}))
            )"""
        # A journey follows 1-3 experiments ("slots") among those launched before it started;
        # each exposure names one (or two) of them.
        buckets = sql_list(self.slug_buckets)
        launched = sql_list(plan.launched_bucket_counts())
        slots = f"""
            select *, {buckets}[{self.r('j, m1', 'slot', 'launched')} + 1] as slug1,
                   case when two_roll and nslots > 1 and not is_dirty
                        then {buckets}[{self.r('j, (m1 + 1) % nslots', 'slot', 'launched')} + 1] end as slug2_raw
            from (
                select *, {self.r('k', 'slot_pick', 'nslots')} as m1,
                       {launched}[({self.now_us} - journey_created_us) // {day} + 1] as launched
                from (
                    select *, 1 + {self.r('j', 'slots', 3)} as nslots,
                           {is_exposure} as is_exposure,
                           {is_exposure} and (k < {n_dirty} or {self.r('k', 'dirty', 1000)} < {plan.DIRTY_PAYLOAD_PERMILLE}) as is_dirty,
                           (case when k < {n_dirty} then k else {self.r('k', 'dirty_kind', n_dirty)} end) as dirty_kind,
                           {other_type} as other_type,
                           {self.r('k', 'other_pick', plan.OTHER_PAYLOAD_PICKS)} as other_pick,
                           {self.pick('k', 'surface', [w for _, w in plan.SURFACES])} as surface_no,
                           {self.r('k', 'two_slugs', 1000)} < {plan.TWO_SLUG_PERMILLE} as two_roll
                    from ({late})
                )
            )"""
        # A journey keeps its variant of a slug, except for the occasional switch.
        def variant(slug: str, salt: str) -> str:
            nv = f"{self.slug_n_variants}[{slug} + 1]"
            return (f"{self.slug_first_g}[{slug} + 1] + case when {self.r('k', salt, 1000)} < "
                    f"{plan.VARIANT_SWITCH_PERMILLE} then {self.r('k', salt + '_to', nv)} "
                    f"else {self.usual_variant('j', slug)} end")
        return f"""
            select *, {variant('slug1', 'switch')} as g1,
                   case when slug2 is not null then {variant('slug2', 'switch2')} end as g2
            from (select * exclude (slug2_raw), case when slug2_raw <> slug1 then slug2_raw end as slug2
                  from ({slots}))"""

    def events_sql(self) -> str:
        """Events numbered by ingestion time (ties by generation number), like an identity column.
        Needs `prepare(con)` first: payload texts come from the catalogue by number."""
        ordered = f"""
            select k, row_number() over (order by ingested_us, k) as id
            from ({self._event_times_sql(f'select range as k from range({self.sizes.events})')})"""
        other_types = [t for t, _ in plan.OTHER_EVENT_TYPES]
        decoy_no = other_types.index(plan.DECOY_EVENT_TYPE)
        c, nv, ns = self.payloads, self.n_variants, len(plan.SURFACES)
        payload_no = f"""case
                when not is_exposure and other_type = {decoy_no} then {c.decoy} + g1
                when not is_exposure then {c.other} + other_type * {plan.OTHER_PAYLOAD_PICKS} + other_pick
                when is_dirty then {c.dirty} + dirty_kind * {nv} + g1
                when g2 is null then {c.single} + g1 * {ns} + surface_no
                else {c.double} + (g1 * {nv} + g2) * {ns} + surface_no end"""
        return f"""
            select e.id, {self.journey_id('e.j')} as journey_id,
                   case when e.is_exposure then '{plan.EXPOSURE_EVENT_TYPE}'
                        else {sql_list(other_types, 'VARCHAR')}[e.other_type + 1] end as event_type,
                   p.payload,
                   {self.ts('e.recorded_us')} as recorded_at, {self.ts('e.ingested_us')} as ingested_at
            from (select *, {payload_no} as payload_no from ({self._event_times_sql(ordered)})) e
            join {PAYLOAD_TABLE} p using (payload_no)"""

    def telemetry_sql(self) -> str:
        profiles = plan.provider_profile_names()
        by_name = {p.name: p for p in plan.PROVIDER_PROFILES}
        hour = plan.TELEMETRY_WINDOW_S * US
        latest_end = f"({self.now_us} - {self.now_us} % {hour})"
        # Latest-window figures of the profiled providers; everyone else is seeded noise.
        def fixed(attr: str) -> str:
            whens = " ".join(
                f"when '{name}' then {getattr(p, attr)}" for name, p in by_name.items())
            return f"(case profile {whens} end)"
        noise_gf = f"(case when {self.r('p, w', 'gf', 100)} < 4 then 1 else 0 end)"
        noise_rt = self.r("p, w", "replay_total", 11)
        noise_rf = f"(case when {self.r('p, w', 'rf', 100)} < 3 then 1 else 0 end)"
        profiled = "profile is not null and profile not in ('no_experiment', 'silent')"
        latest_fixed = f"w = 0 and {profiled} and not (profile = 'warning_resent_window' and dup = 0)"
        recovering = "profile = 'recovered' and w between 1 and 3"
        ordinary_latest = f"w = 0 and not ({latest_fixed})"
        gf = (f"case when {latest_fixed} then {fixed('guardrail_failures')} when {recovering} then 4 "
              f"when {ordinary_latest} then 0 else {noise_gf} end")
        rf = (f"case when {latest_fixed} then {fixed('replay_failures')} when {recovering} then 1 "
              f"when {ordinary_latest} then 0 else least({noise_rf}, {noise_rt}) end")
        rt = (f"case when {latest_fixed} then {fixed('replay_total')} when {recovering} then 6 "
              f"else {noise_rt} end")
        slug_no = f"{sql_list(self.slug_buckets)}[{self.r('p', 'telemetry_slug', len(self.slug_buckets))} + 1]"
        slugs = sql_list([e.slug for e in plan.EXPERIMENTS], "VARCHAR")
        variant_keys = sql_list([v.key for _, _, _, v in plan.all_variants()], "VARCHAR")
        g = (f"{self.slug_first_g}[slug_no + 1] + "
             f"{self.r('p, w', 'telemetry_variant', f'{self.slug_n_variants}[slug_no + 1]')}")
        return f"""
            select row_number() over (order by recorded_us, p, dup) as id,
                   {self.provider_id('p')} as provider_id,
                   case when profile is distinct from 'no_experiment' then {slugs}[slug_no + 1] end as experiment_slug,
                   case when profile is distinct from 'no_experiment' then {variant_keys}[{g} + 1] end as variant_key,
                   {self.ts(f'window_end_us - {hour}')} as window_start,
                   {self.ts('window_end_us')} as window_end,
                   (40 + {self.r('p, w, dup', 'checks', 360)})::INTEGER as guardrail_checks,
                   ({gf})::INTEGER as guardrail_failures,
                   ({rt})::INTEGER as replay_total,
                   ({rf})::INTEGER as replay_failures,
                   {self.ts('recorded_us')} as recorded_at
            from (
                select *, {latest_end} - w * {hour} as window_end_us,
                       least({self.now_us}, {latest_end} - w * {hour}
                             + (5 + {self.r('p, w', 'telemetry_recorded', 240)} + 30 * dup) * {US}) as recorded_us,
                       {slug_no} as slug_no
                from (
                    select p, {sql_list(profiles, 'VARCHAR')}[rank + 1] as profile
                    from (select p, row_number() over (order by hash(p, {self.seed}, 'profile'), p) - 1 as rank
                          from (select range as p from range({plan.PROVIDER_COUNT})))
                ) providers
                cross join (select range as w from range({plan.TELEMETRY_WINDOWS})) windows
                cross join (select range as dup from range(2)) copies
                where profile is distinct from 'silent'
                  and (w = 0 or ({recovering}) or {self.r('p, w', 'gap', 100)} >= {plan.TELEMETRY_GAP_PERCENT})
                  and (dup = 0 or (w = 0 and profile = 'warning_resent_window'))
            )"""

    def table_sql(self, table: SourceTable) -> str:
        """The rows of one source table, columns in contract order."""
        builders = {
            FULFILLMENT_PROVIDERS.name: self.providers_sql,
            ORDERS.name: self.orders_sql,
            ONBOARDING_JOURNEYS.name: self.journeys_sql,
            ONBOARDING_JOURNEY_EVENTS.name: self.events_sql,
            PROVIDER_GUARDRAIL_TELEMETRY.name: self.telemetry_sql,
        }
        return f"select {', '.join(table.column_names)} from ({builders[table.name]()})"


# Targets -------------------------------------------------------------------------------------
