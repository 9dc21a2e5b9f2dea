/**
 * Issue 4, acceptance 2, for the simulator's fault classes modes.test.ts does not cover: ONE real
 * `keel run` against an external `keel sim` (600× replay of a signal-dense window), each class
 * switched on for a few seconds and off again, observed from keel's side (`/status`, its log, its
 * database) and from the simulator's ground truth (`/_sim/state`).
 *
 * | class            | where it acts (src/sim/server)        | expected from keel                                        |
 * |------------------|---------------------------------------|-----------------------------------------------------------|
 * | wsStall          | a socket stops delivering (stallMs)   | feed falls back to REST, `wsDown` → Degraded; back Normal  |
 * | staleFeed        | a market frame repeats the last one   | filtered (older bars ignored): mode stays Normal          |
 * | duplicateFeed    | a market frame sent twice             | filtered (each bar closes once): mode stays Normal        |
 * | reorderFeed      | two frames swapped                    | filtered: mode stays Normal                               |
 * | badTick          | a price ×0.5…0.7 or ×1.5…2 in a frame | held by the bad-tick filter: Normal, no closed bar off by  |
 * |                  |                                       | > 25 % from the previous one, no `fat_finger` denial     |
 * | latency          | +latencyMs per request / post         | breakers may open (info → Degraded) and close; Normal     |
 * | http5xx          | 500/502/503/504 answers               | idem                                                      |
 * | dropConnection   | socket destroyed before the request   | idem; the order's outcome unknown → resolved by cloid      |
 * | lostResponse     | executed, answer never arrives        | idem; resolved by cloid, never placed twice               |
 * | rateLimit        | HTTP 429                              | backs off; idem                                           |
 * | reject           | the engine refuses an order           | Normal; the entry is `rejected` in keel's database        |
 * | partialFill      | an IOC fills 10–90 %                  | Normal; the position is the filled size, its stop covers it |
 *
 * After every class: faults off → Normal on the WebSocket with every breaker closed. At the end:
 * keel's database agrees with the venue (no duplicate cloid, nothing unresolved, fills and
 * positions equal) and no position is without a full stop.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  ChildHandle,
  disagreements,
  eventually,
  killAll,
  openDbView,
  removeTempDirs,
  replayWindow,
  setFaults,
  simState,
  startSim,
  tempDir,
  unprotectedPositions,
  type KeelStatus,
  type LogLine,
} from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

interface Status extends KeelStatus {
  readonly mode: string;
  readonly gate: string;
  readonly conditions: readonly string[];
  readonly breakers: Readonly<Record<'info' | 'exchange' | 'ws', string>>;
  readonly feed: { readonly source: string; readonly stale: boolean };
}

const TOKEN = 'fault-classes-test-token-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('every remaining simulator fault class, one keel session', () => {
  it('each class has its expected effect, keel returns to Normal, and its invariants hold', { timeout: 240_000 }, async () => {
    const dir = tempDir('fault-classes');
    const sim = await startSim({ speed: 600, seed: 31, data: replayWindow(dir, 110) });
    const url = sim.url;
    const config = path.join(dir, 'keel.yaml');
    writeFileSync(config, 'mode:\n  hysteresisMs: 2000\n');
    const dataDir = path.join(dir, 'data');
    const child = new ChildHandle('keel run', ['run', '--config', config], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '127.0.0.1:0', KEEL_API_URL: url, KEEL_LOG_LEVEL: 'debug', KEEL_API_TOKEN: TOKEN });
    const opsUrl = String((await child.waitForMsg('ops http listening', 30_000)).url);
    const account = String((await child.waitForMsg('keel starting', 10_000)).account);
    // On failure the whole log is kept for the post-mortem (its path is in the error).
    const postMortem = path.join(os.tmpdir(), `keel-fault-classes-${process.pid}.log`);
    try {
      const status = async (): Promise<Status> => {
        const r = await fetch(`${opsUrl}/status`, { signal: AbortSignal.timeout(5_000) });
        if (!r.ok) throw new Error(`GET /status: HTTP ${r.status}`);
        return (await r.json()) as Status;
      };
      const statusUntil = (what: string, pred: (s: Status) => boolean, timeoutMs: number) =>
        eventually(
          async () => {
            const s = await status();
            return pred(s) ? s : undefined;
          },
          { timeoutMs, intervalMs: 100, what: `${what}\n${child.tail(20)}` },
        );
      const healthy = (s: Status) => s.mode === 'Normal' && s.feed.source === 'ws' && !s.feed.stale && Object.values(s.breakers).every((b) => b === 'closed');
      await child.waitForMsg('reconciled with the venue', 20_000);
      await statusUntil('Normal on the WebSocket', healthy, 20_000);

      /** Faults on for `holdMs` (or until `until` holds), off, back to Normal; what /status showed meanwhile. */
        const phase = async (name: string, faults: Record<string, number>, opts: { holdMs: number; until?: (s: Status) => boolean; onStart?: () => void; maxMs?: number }) => {
        const from = child.lines.length;
        const seen: Status[] = [];
        await setFaults(url, faults);
        opts.onStart?.();
        const deadline = Date.now() + opts.holdMs;
        for (;;) {
          const s = await status();
          seen.push(s);
          if (opts.until ? opts.until(s) : Date.now() >= deadline) break;
          if (Date.now() > deadline + (opts.maxMs ?? 20_000)) throw new Error(`${name}: the expected effect never showed; last status ${JSON.stringify({ mode: s.mode, conditions: s.conditions, feed: s.feed, breakers: s.breakers })}\n${child.tail(20)}`);
          await sleep(150);
        }
        await setFaults(url, {});
        await statusUntil(`${name}: back to Normal on the WebSocket, breakers closed`, healthy, 60_000);
        expect(child.running, `${name}: keel exited`).toBe(true);
        return { seen, lines: child.lines.slice(from) };
      };
      const modesLogged = (lines: readonly LogLine[]) => lines.filter((l) => /^mode \w+ → \w+$/.test(l.msg)).map((l) => l.msg);

      // wsStall: the socket stays open but silent; after the feed's staleAfterMs (5 s) it polls REST.
      const stall = await phase('wsStall', { wsStall: 1, stallMs: 9_000 }, { holdMs: 0, until: (s) => s.mode === 'Degraded' && s.feed.source === 'rest' });
      const degraded = stall.seen.at(-1)!;
      expect(degraded.conditions).toContain('wsDown');
      expect(degraded.gate).toBe('active');
      expect(stall.lines.some((l) => l.msg === 'market feed source changed' && l.to === 'rest')).toBe(true);
      expect(modesLogged(stall.lines)).toContain('mode Normal → Degraded');

      // Feed corruptions: filtered by the feed, never a mode change.
      for (const cls of ['staleFeed', 'duplicateFeed', 'reorderFeed', 'badTick']) {
        const p = await phase(cls, { [cls]: 0.3 }, { holdMs: 2_500 });
        expect(p.seen.map((s) => s.mode).filter((m) => m !== 'Normal'), `${cls}: modes seen`).toEqual([]);
        expect(modesLogged(p.lines), `${cls}: mode changes logged`).toEqual([]);
        expect(p.lines.filter((l) => l.msg === 'risk verdict: denied' && l.reason === 'fat_finger'), `${cls}: fat-finger denials`).toEqual([]);
      }

      // Transport faults: keel's own requests go through them (a dry-run reconciliation every few
      // hundred ms, plus its polls and any order the strategy sends); whatever mode they reach, keel
      // comes back (checked in phase()), and its order actors never fail.
      let lastReport = '';
      const reconcile = async (): Promise<{ status: number; clean?: boolean }> => {
        try {
          const r = await fetch(`${opsUrl}/control/reconcile?dryRun=true`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(20_000) });
          const body = (await r.json().catch(() => ({}))) as { clean?: boolean };
          lastReport = JSON.stringify(body).slice(0, 2_000);
          return { status: r.status, ...(body.clean !== undefined ? { clean: body.clean } : {}) };
        } catch {
          return { status: 0 };
        }
      };
      const windowFailures = async (): Promise<number> => {
        const text = await (await fetch(`${opsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
        let n = 0;
        for (const m of text.matchAll(/^keel_breaker_window_calls\{[^}]*event="(failures|timeouts|rejects)"[^}]*\} (\d+(?:\.\d+)?)$/gm)) n += Number(m[2]);
        return n;
      };
      const sentUnderTransport: string[] = [];
      const transport: Record<string, { modes: string[]; probes: string[]; windowFailures: number; rateLimited: number }> = {};
      for (const [cls, faults] of [
        ['latency', { latency: 0.5, latencyMs: 4_000 }],
        ['http5xx', { http5xx: 0.5 }],
        ['dropConnection', { dropConnection: 0.3 }],
        ['lostResponse', { lostResponse: 0.3 }],
        ['rateLimit', { rateLimit: 0.5 }],
      ] as const) {
        const from = child.lines.length;
        // One reconciliation sent into the faults (not awaited: under latency or lost answers it can
        // take its full timeout), recorded when it ends.
        const probes: string[] = [];
        const p = await phase(cls, faults, {
          holdMs: 3_000,
          onStart: () => void reconcile().then((r) => probes.push(`${r.status}${r.clean === undefined ? '' : r.clean ? ' clean' : ' dirty'}`)),
        });
        sentUnderTransport.push(...child.lines.slice(from).filter((l) => l.msg === 'sending order').map((l) => String(l.cloid)));
        transport[cls] = {
          modes: [...new Set(p.seen.map((s) => s.mode))],
          probes,
          windowFailures: await windowFailures(),
          rateLimited: p.lines.filter((l) => /429|rate.?limit/i.test(JSON.stringify(l))).length,
        };
        expect(p.lines.filter((l) => l.msg === 'order actor failed'), `${cls}: order actors failed`).toEqual([]);
      }
      // Not vacuous: the faults did reach keel (failed calls in its breakers' window, or failed probes).
      expect(Object.values(transport).some((t) => t.windowFailures > 0 || t.probes.some((p) => p !== '200 clean')), JSON.stringify(transport)).toBe(true);

      // Engine faults: on until the strategy's next entry meets them (positions already open keep
      // their protection; reject: 1 also refuses any stop move meanwhile, which keeps the old stop).
      const entryEnds = (state: RegExp) => (l: LogLine) => l.kind === 'entry' && state.test(l.msg);

      // Not while a position is bare: reject: 1 would also refuse the stop that re-protects it.
      await eventually(async () => (unprotectedPositions(await simState(url), account).length === 0 ? true : undefined), { timeoutMs: 30_000, what: 'every position protected before reject' });
      const rejectFrom = child.lines.length;
      const rej = await phase('reject', { reject: 1 }, { holdMs: 0, maxMs: 40_000, until: () => child.lines.slice(rejectFrom).some(entryEnds(/^order rejected$/)) });
      expect(rej.seen.map((s) => s.mode).filter((m) => m !== 'Normal')).toEqual([]);
      const rejected = child.lines.slice(rejectFrom).find(entryEnds(/^order rejected$/))!;

      const partialFrom = child.lines.length;
      const filledEntry = (l: LogLine) => entryEnds(/^order (filled|cancelled|partially_filled)$/)(l) && Number(l.filledSz) > 0;
      const part = await phase('partialFill', { partialFill: 1 }, { holdMs: 0, maxMs: 40_000, until: () => child.lines.slice(partialFrom).some(filledEntry) });
      expect(part.seen.map((s) => s.mode).filter((m) => m !== 'Normal')).toEqual([]);
      const partial = child.lines.slice(partialFrom).find(filledEntry)!;

      // The database: the rejected entry is `rejected`; the partial entry filled less than asked and
      // protection was placed for what filled.
      const db = openDbView(dataDir);
      try {
        const orders = db.orders();
        for (const cloid of sentUnderTransport) expect(orders.find((o) => o.cloid === cloid)?.state, `order ${cloid} sent under transport faults`).toMatch(/^(resting|partially_filled|filled|cancelled|rejected)$/);
        expect(orders.find((o) => o.cloid === rejected.cloid)?.state).toBe('rejected');
        const entry = orders.find((o) => o.cloid === partial.cloid)!;
        expect(Number(entry.filledSz)).toBeGreaterThan(0);
        expect(Number(entry.filledSz)).toBeLessThan(Number(entry.sz));
        // Its stops (until the coin's next entry) are sized to what filled, never to what was asked.
        const after = orders.slice(orders.indexOf(entry) + 1);
        const next = after.findIndex((o) => o.kind === 'entry' && o.coin === entry.coin);
        const stops = (next < 0 ? after : after.slice(0, next)).filter((o) => o.kind === 'stop_loss' && o.coin === entry.coin);
        expect(stops.length, `a stop after the partial entry ${entry.cloid}`).toBeGreaterThan(0);
        expect(stops.map((o) => Number(o.sz))).toContain(Number(entry.filledSz));
        expect(stops.filter((o) => Number(o.sz) > Number(entry.filledSz))).toEqual([]);

        // Quiet moment: keel's database and the venue agree, nothing in flight, nothing unprotected.
        await eventually(
          async () => {
            const s = await simState(url);
            const d = [...disagreements({ orders: db.orders(), positions: db.positions(), fills: db.fills() }, s, account), ...unprotectedPositions(s, account).map((u) => `unprotected ${u}`)];
            return d.length === 0 ? true : (Promise.reject(new Error(d.join('\n'))) as never);
          },
          // Long enough for the periodic protection check (every 10 s, acting on a second sighting).
          { timeoutMs: 35_000, intervalMs: 300, what: 'keel and the venue agree' },
        );
      } finally {
        db.close();
      }
      // And keel's own view: a reconciliation finds nothing to fix.
      await eventually(async () => ((await reconcile()).clean === true ? true : undefined), { timeoutMs: 20_000, intervalMs: 2_000, what: 'a clean reconciliation at the end' }).catch((e: Error) => {
        throw new Error(`${e.message}; last report ${lastReport}`);
      });
      // A periodic reconciliation that met an order in flight may have raised Critical: it comes back.
      await statusUntil('Normal at the end', healthy, 30_000);
      expect(child.lines.filter((l) => l.msg === 'order actor failed' || l.level === 60)).toEqual([]);
      // badTick never reached the strategy: no closed bar (debug log) jumps > 25 % from the previous one.
      const last = new Map<string, number>();
      const jumps: string[] = [];
      const closes = child.messages('candle closed');
      for (const l of closes) {
        const coin = String(l.coin);
        const c = Number(l.c);
        const prev = last.get(coin);
        if (prev !== undefined && Math.abs(c / prev - 1) > 0.25) jumps.push(`${coin} ${prev} → ${c} at ${String(l.t)}`);
        last.set(coin, c);
      }
      expect(closes.length).toBeGreaterThan(0);
      expect(jumps).toEqual([]);
      console.info(`fault-classes: modes reached under transport faults ${JSON.stringify(transport)}`);
    } catch (e) {
      child.dump(postMortem);
      writeFileSync(`${postMortem}.sim.json`, JSON.stringify(await simState(url).catch(() => null)));
      throw new Error(`${(e as Error).message}\n(keel's log: ${postMortem}, the simulator's state: ${postMortem}.sim.json)`, { cause: e });
    }
  });
});
