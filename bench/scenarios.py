"""The scenarios of the benchmark (``bench/run.py``): what each one produces and expects.

Per scenario (the changes themselves are ``bench/loadgen.py``'s): write the setup and timed
phases to Kafka in the copies the systems read, load the setup phase into every system's
table untimed, run every system timed one at a time, then check each table's final state
against the expected one (live rows, ``sum(seq)``, the nested ``metadata.plan``): a system
whose state is wrong gets no ratio. :data:`TARGETS` are the events/s our sink must reach.
How each system is run and measured is ``bench/systems.py``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import loadgen
from measure import Measured, fmt, fmt_rate, log
from systems import Systems

TARGETS = {"a": 30_000, "b": 20_000, "c": 5_000, "d": 10_000, "e": 20_000}
OURS_SCHEMA = loadgen.DB


class Bench(Systems):
    """:class:`Systems` plus the scenarios run on them."""

    async def scenario(self, name: str) -> dict[str, Any]:
        a = self.args
        plan = loadgen.make_plan(name, a.scale, a.seed)
        sc = plan.scenario
        copies = []
        if "quix" in a.peers:
            copies.append("plain")
        if "connect" in a.peers:
            copies.append("dbzs")
        if a.avro and self.registry is not None:
            copies.append("avro")
        await self.drop_tables(name, sc.collection)
        log(f"scenario {name} ({sc.title}): loading {plan.n_preload} setup + "
            f"{plan.n_changes} timed changes, copies {copies}")
        loaded = await loadgen.load(self.info.bootstrap_servers, plan, self.run_id,
                                    copies=copies, registry=self.registry)
        ex = loaded.expected
        log(f"  loaded in {loaded.seconds:.1f} s: {ex.messages} timed messages, expected "
            f"{ex.live} live rows")
        setup, timed = loaded.setup, loaded.timed
        res: dict[str, Any] = {"scenario": name, "title": sc.title, "plan": asdict(plan)
                               | {"scenario": name}, "expected": asdict(ex), "systems": {}}
        m1, m2 = loadgen.markers(plan, 1), loadgen.markers(plan, 2)
        avro = "avro" in loaded.copies
        # --- setup phases, untimed
        if setup is not None:
            log("  setup phase (untimed): ours" + (", ours (avro)" if avro else ""))
            s = await self.ours(f"ours-{name}-setup", setup.dbz, f"ours-{self.run_id}-{name}"
                                "-setup", ex.setup_messages)
            self.check_setup("ours", s)
            if avro:
                s = await self.ours(f"ours-avro-{name}-setup", setup.avro,
                                    f"ours-avro-{self.run_id}-{name}-setup",
                                    ex.setup_messages, schema="bench_avro",
                                    collection=sc.collection, avro=True)
                self.check_setup("ours (avro)", s)
            if "quix" in a.peers:
                log("  setup phase (untimed): quix")
                self.check_setup("quix", await self.quix(name, "setup", setup.plain,
                                                         ex.setup_messages, m1))
            if "connect" in a.peers:
                log("  setup phase (untimed): connect")
                self.check_setup("connect", await self.connect(name, "setup", setup.dbzs,
                                                               ex.setup_messages, m1))
        # --- timed
        systems: dict[str, Measured] = {}
        await self.checkpoint()
        log("  timed: ours")
        m = await self.ours(f"ours-{name}-timed", timed.dbz, f"ours-{self.run_id}-{name}-timed",
                            ex.messages)
        m.state = await self.ours_state(OURS_SCHEMA, sc.collection)
        m.state_ok = self.state_ok(m.state, ex)
        systems["ours"] = m
        log(f"    {fmt_rate(m.rate)} ev/s in {fmt(m.seconds)} s, steady {fmt_rate(m.steady)}, "
            f"RSS {fmt(m.peak_rss_mb)} MB, CPU {fmt(m.cpu_s)} s, state ok: {m.state_ok} "
            f"{m.note}")
        if avro:
            await self.checkpoint()
            log("  timed: ours (avro)")
            m = await self.ours(f"ours-avro-{name}-timed", timed.avro,
                                f"ours-avro-{self.run_id}-{name}-timed", ex.messages,
                                schema="bench_avro", collection=sc.collection, avro=True)
            m.state = await self.ours_state("bench_avro", sc.collection)
            m.state_ok = self.state_ok(m.state, ex)
            systems["ours (avro)"] = m
            log(f"    {fmt_rate(m.rate)} ev/s, state ok: {m.state_ok} {m.note}")
        await self.checkpoint()
        log("  timed: ceiling pg")
        systems["ceiling pg"] = await self.ceiling(
            "pg", ["--scenario", name, "--scale", str(a.scale), "--seed", str(a.seed),
                   "--dsn", self.info.pg_dsn, "--batch", str(a.batch)], f"ceiling-pg-{name}")
        log(f"    {fmt_rate(systems['ceiling pg'].rate)} ev/s {systems['ceiling pg'].note}")
        log("  timed: ceiling decode")
        systems["ceiling decode"] = await self.ceiling(
            "decode", ["--topic", timed.dbz, "--bootstrap", self.info.bootstrap_servers],
            f"ceiling-decode-{name}")
        log(f"    {fmt_rate(systems['ceiling decode'].rate)} ev/s "
            f"{systems['ceiling decode'].note}")
        if avro:
            c = await self.ceiling(
                "decode", ["--topic", timed.avro, "--bootstrap", self.info.bootstrap_servers,
                           "--format", "avro", "--registry", self.registry.url],
                f"ceiling-decode-avro-{name}")
            c.system = "ceiling decode (avro)"
            systems["ceiling decode (avro)"] = c
            log(f"    avro decode: {fmt_rate(c.rate)} ev/s {c.note}")
        if "quix" in a.peers:
            await self.checkpoint()
            log("  timed: quix")
            m = await self.quix(name, "timed", timed.plain, ex.messages, m2)
            m.state = await self.peer_state(f"peer_quix_{name}")
            m.state_ok, why = self.peer_ok(m, ex, "quix")
            m.note = "; ".join(x for x in (m.note, why) if x)
            systems["quix"] = m
            log(f"    {fmt_rate(m.rate)} ev/s, state ok: {m.state_ok} {m.note}")
        if "connect" in a.peers:
            await self.checkpoint()
            log("  timed: connect")
            m = await self.connect(name, "timed", timed.dbzs, ex.messages, m2)
            m.state = await self.peer_state(f"peer_jdbc_{name}")
            m.state_ok, why = self.peer_ok(m, ex, "connect")
            m.note = "; ".join(x for x in (m.note, why) if x)
            systems["connect"] = m
            log(f"    {fmt_rate(m.rate)} ev/s, state ok: {m.state_ok} {m.note}")
        res["systems"] = {k: asdict(v) for k, v in systems.items()}
        res["avro_note"] = loaded.avro_note
        res["topics"] = asdict(timed)
        res["setup_topics"] = asdict(setup) if setup is not None else None
        return res

    async def drop_tables(self, name: str, collection: str) -> None:
        """Every table this scenario writes, from an earlier run on a reused stack."""
        pool = await self.pg()
        for schema in (OURS_SCHEMA, "bench_avro", "bench_prof_pyinstrument", "bench_prof_pyspy"):
            await pool.execute(f'DROP TABLE IF EXISTS "{schema}"."{collection}"')
        for table in (f"peer_quix_{name}", f"peer_jdbc_{name}"):
            await pool.execute(f'DROP TABLE IF EXISTS public."{table}"')

    def check_setup(self, who: str, m: Measured) -> None:
        if m.seconds is None:
            log(f"    setup of {who} did not complete: {m.note}")
        else:
            log(f"    {who}: {m.seconds:.1f} s")

    @staticmethod
    def state_ok(state: dict[str, Any], ex: loadgen.Expected) -> bool:
        return bool(state) and (state.get("live"), state.get("sum_seq"),
                                state.get("upgraded")) == (ex.live, ex.sum_seq, ex.upgraded)

    def peer_ok(self, m: Measured, ex: loadgen.Expected, peer: str) -> tuple[bool, str]:
        st = m.state
        if m.seconds is None:
            return False, ""
        if not st:
            return False, "no table"
        why = []
        if st.get("live") != ex.live:
            why.append(f"{st.get('live')} rows, expected {ex.live}"
                       + (" (deletes not applied)" if st.get("live", 0) > ex.live
                          and ex.live < ex.messages else ""))
        if st.get("sum_seq") != ex.sum_seq:
            why.append("sum(seq) differs from the expected final state")
        if st.get("upgraded") != ex.upgraded:
            col = "metadata.plan" in st.get("columns", [])
            why.append(f"nested metadata.plan set on {st.get('upgraded')} rows, expected "
                       f"{ex.upgraded}" + (" (the dotted path became a column named "
                                           "\"metadata.plan\")" if col else ""))
        return not why, "; ".join(why)
