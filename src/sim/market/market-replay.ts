/**
 * Deterministic market replay: recorded 1-minute bars → one `MarketBlock` per coin per block.
 *
 * Time: block n happens at exchange time `startTime + n·blockMs` and stands for market time
 * `marketTime(n)`, which advances `blockMs·speed` per block (speed changes apply from the block
 * after the current one). Recorded bars are rebased so that bar `historyBars` is the minute that
 * contains `startTime` (market time == exchange time at block 0, candles stay minute-aligned).
 * When the recording runs out it loops, every cycle scaled by close_last/open_first so the price
 * is continuous.
 *
 * Invariants:
 *   - `block(n)` is a pure function of (seed, n, speed history): all randomness is a counter-based
 *     hash (prng.ts), never hidden generator state; caches only avoid recomputation;
 *   - inside bar j the price path starts at open, touches high and low (order and times seeded),
 *     ends at close and never leaves [low, high]; the oracle is the same path without its noise;
 *   - the synthetic book is never crossed, best bid < mid < best ask, ≤ 20 levels a side, every
 *     price a valid Hyperliquid price for the coin's szDecimals and every size a whole lot;
 *   - synthetic trade volume telescopes: the lots printed between two market times are exactly the
 *     floor-rounded cumulative recorded volume between them, so candles and trades agree.
 * Floats carry only the synthetic path; every emitted price is an exact integer count of price
 * units (10^-(6 − szDecimals)) turned into a Decimal.
 */
import { Decimal } from '../../domain/decimal.ts';
import type { BookLevel, MarketBlock, Side, SynthTrade } from '../types.ts';
import { MINUTE_MS } from './candle-format.ts';
import type { CoinSeries } from './candle-loader.ts';
import { type CandleInterval, bucketEnd, bucketStart, isCandleInterval } from './candle-intervals.ts';
import { hash32, hashString, s11, u01 } from './prng.ts';

/** A candle exactly as `candleSnapshot` and the `candle` channel send it. */
export interface CandleWire {
  t: number;
  T: number;
  s: string;
  i: CandleInterval;
  o: string;
  c: string;
  h: string;
  l: string;
  v: string;
  n: number;
}

export interface MarketReplayOptions {
  readonly seed: number;
  readonly series: readonly CoinSeries[];
  /** Exchange milliseconds per block. */
  readonly blockMs?: number;
  /** Market milliseconds per exchange millisecond. */
  readonly speed?: number;
  /** Exchange time of block 0 (epoch ms). */
  readonly startTime: number;
  /** Recorded bars already in the past at block 0 (served by candleSnapshot). */
  readonly historyBars?: number;
  /** USD notional of a typical top-of-book level; deeper levels grow from it. */
  readonly depthUsd?: number;
}

export const MAX_BOOK_LEVELS = 20;
export const MAX_CANDLES = 5000;
const PERP_MAX_DECIMALS = 6;
const BAR_MS = MINUTE_MS;
/** Interest component of Hyperliquid's hourly funding (0.01 % per 8 h). */
const INTEREST_PER_HOUR = 0.0000125;
const FUNDING_CAP = 0.0004;
/** The noise amplitude as a share of the bar's range; large enough to look alive, small enough to rarely clip. */
const NOISE_SHARE = 0.25;
/** Blocks a price level's presence / size persists (market makers requote, they do not flicker). */
const PRESENCE_EPOCH = 64;
const SIZE_EPOCH = 24;
const DECIMAL_CACHE_LIMIT = 50_000;

// Hash streams: one per independent kind of draw.
const S_ANCHOR = 1, S_NOISE = 2, S_NOISE_FINE = 3, S_SPREAD = 4, S_PRESENCE = 5, S_PHASE = 6, S_SIZE = 7, S_TRADES = 8, S_TRADE = 9, S_BASIS = 10;

const POW10: number[] = Array.from({ length: 23 }, (_, k) => 10 ** k);

function digitsMinusOne(u: number): number {
  let k = Math.max(0, Math.floor(Math.log10(u)));
  // log10 may be off by one ulp around powers of ten; settle it with exact comparisons.
  while (k > 0 && u < (POW10[k] as number)) k--;
  while (u >= (POW10[k + 1] as number)) k++;
  return k;
}

/**
 * Tick size in price units (10^-d) at a price of `u` units: five significant figures, at most d
 * decimals, and integers always valid — Hyperliquid's perp price rule.
 */
export function tickUnits(u: number, d: number): number {
  return POW10[Math.max(0, Math.min(digitsMinusOne(u) - 4, d))] as number;
}

/** Plain decimal string of `u·10^-d` in Hyperliquid's candle style ("29295.0", "0.98639"). */
export function unitsToWire(u: number, d: number, withPoint = true): string {
  let s = String(Math.abs(u));
  if (d > 0) {
    s = s.padStart(d + 1, '0');
    let frac = s.slice(s.length - d).replace(/0+$/, '');
    const int = s.slice(0, s.length - d);
    if (frac === '' && withPoint) frac = '0';
    s = frac === '' ? int : `${int}.${frac}`;
  } else if (withPoint) s = `${s}.0`;
  return u < 0 ? `-${s}` : s;
}

interface CycleBars {
  readonly o: Float64Array;
  readonly h: Float64Array;
  readonly l: Float64Array;
  readonly c: Float64Array;
}

interface PartialCache {
  j: number;
  upTo: number;
  hi: number;
  lo: number;
}

interface CandleCache {
  bs: number;
  j0: number;
  j1: number;
  o: number;
  hi: number;
  lo: number;
  c: number;
  n: number;
}

/** One coin's recorded bars in price units plus its caches. */
class CoinTrack {
  readonly coin: string;
  readonly szDecimals: number;
  /** Price decimals: 6 − szDecimals. */
  readonly d: number;
  readonly key: number;
  readonly nBars: number;
  readonly base: CycleBars;
  readonly lots: Float64Array;
  /** prefix[r] = lots of bars 0..r-1 of one cycle. */
  readonly prefix: Float64Array;
  readonly trades: Float64Array;
  readonly rho: number;
  readonly cycles = new Map<number, CycleBars>();
  readonly pxCache = new Map<number, Decimal>();
  readonly szCache = new Map<number, Decimal>();
  partial: PartialCache | undefined;
  funding: { j: number; rate: Decimal } | undefined;
  readonly candles = new Map<CandleInterval, CandleCache>();
  // Scratch outputs of `path()`, to keep the hot loop allocation-free.
  mid = 0;
  oracle = 0;

  constructor(s: CoinSeries) {
    if (s.bars.length === 0) throw new RangeError(`${s.coin}: no bars`);
    this.coin = s.coin;
    this.szDecimals = s.szDecimals;
    this.d = PERP_MAX_DECIMALS - s.szDecimals;
    this.key = hashString(s.coin);
    const n = s.bars.length;
    this.nBars = n;
    const pxScale = new Decimal(10).pow(this.d);
    const lotScale = new Decimal(10).pow(s.szDecimals);
    const units = (x: Decimal): number => x.mul(pxScale).round().toNumber();
    const o = new Float64Array(n), h = new Float64Array(n), l = new Float64Array(n), c = new Float64Array(n);
    this.lots = new Float64Array(n);
    this.prefix = new Float64Array(n + 1);
    this.trades = new Float64Array(n);
    s.bars.forEach((b, r) => {
      o[r] = Math.max(1, units(b.o));
      h[r] = Math.max(1, units(b.h));
      l[r] = Math.max(1, units(b.l));
      c[r] = Math.max(1, units(b.c));
      const lots = b.v.mul(lotScale).round().toNumber();
      this.lots[r] = lots;
      this.prefix[r + 1] = (this.prefix[r] as number) + lots;
      // No trade counts in the recordings: assume a typical print of about $3k.
      const usd = b.v.mul(b.c).toNumber();
      this.trades[r] = lots > 0 ? Math.max(1, Math.round(usd / 3000)) : 0;
    });
    this.base = { o, h, l, c };
    this.rho = (c[n - 1] as number) / (o[0] as number);
  }

  cycleBars(cycle: number): CycleBars {
    if (cycle === 0) return this.base;
    let cb = this.cycles.get(cycle);
    if (cb === undefined) {
      const f = this.rho ** cycle;
      const scale = (a: Float64Array): Float64Array => a.map((x) => Math.max(1, Math.round(x * f)));
      cb = { o: scale(this.base.o), h: scale(this.base.h), l: scale(this.base.l), c: scale(this.base.c) };
      if (this.cycles.size > 8) this.cycles.clear();
      this.cycles.set(cycle, cb);
    }
    return cb;
  }

  /** Cumulative lots of all bars before virtual bar j (j ≥ 0). */
  lotsBefore(j: number): number {
    const cycle = Math.floor(j / this.nBars);
    const r = j - cycle * this.nBars;
    return cycle * (this.prefix[this.nBars] as number) + (this.prefix[r] as number);
  }

  tradesOf(j: number): number {
    return this.trades[j % this.nBars] as number;
  }

  pxDec(u: number): Decimal {
    let v = this.pxCache.get(u);
    if (v === undefined) {
      if (this.pxCache.size >= DECIMAL_CACHE_LIMIT) this.pxCache.clear();
      v = new Decimal(unitsToWire(u, this.d, false));
      this.pxCache.set(u, v);
    }
    return v;
  }

  szDec(lots: number): Decimal {
    let v = this.szCache.get(lots);
    if (v === undefined) {
      if (this.szCache.size >= DECIMAL_CACHE_LIMIT) this.szCache.clear();
      v = new Decimal(unitsToWire(lots, this.szDecimals, false));
      this.szCache.set(lots, v);
    }
    return v;
  }
}

interface SpeedSegment {
  /** The segment governs blocks n > from (and n ≥ 0 for the first one). */
  readonly from: number;
  /** Exact market time of block `from`. */
  readonly mt0: number;
  speed: number;
}

interface Anchors {
  t1: number;
  t2: number;
  e1: number;
  e2: number;
}

export class MarketReplay {
  readonly seed: number;
  readonly blockMs: number;
  readonly startTime: number;
  readonly historyBars: number;
  readonly depthUsd: number;
  /** Market time at which virtual bar 0 opens. */
  readonly baseTime: number;
  readonly #tracks: CoinTrack[];
  readonly #byCoin = new Map<string, CoinTrack>();
  #segments: SpeedSegment[];
  #head = -1;
  #last: { n: number; blocks: MarketBlock[] } | undefined;
  readonly #anchors: Anchors = { t1: 0, t2: 0, e1: 0, e2: 0 };

  constructor(opts: MarketReplayOptions) {
    const { seed, series, startTime } = opts;
    const blockMs = opts.blockMs ?? 100;
    const speed = opts.speed ?? 1;
    const historyBars = opts.historyBars ?? 300;
    if (!Number.isInteger(seed)) throw new RangeError('seed must be an integer');
    if (!(blockMs > 0) || !Number.isFinite(blockMs)) throw new RangeError('blockMs must be positive');
    if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError('speed must be positive');
    if (!Number.isInteger(historyBars) || historyBars < 1) throw new RangeError('historyBars must be an integer ≥ 1');
    if (!Number.isFinite(startTime)) throw new RangeError('startTime must be a finite epoch ms');
    if (series.length === 0) throw new RangeError('at least one coin series is needed');
    this.seed = seed | 0;
    this.blockMs = blockMs;
    this.startTime = startTime;
    this.historyBars = historyBars;
    this.depthUsd = opts.depthUsd ?? 20_000;
    this.baseTime = Math.floor(startTime / BAR_MS) * BAR_MS - historyBars * BAR_MS;
    this.#tracks = series.map((s) => new CoinTrack(s));
    for (const t of this.#tracks) {
      if (this.#byCoin.has(t.coin)) throw new RangeError(`coin ${t.coin} given twice`);
      this.#byCoin.set(t.coin, t);
    }
    this.#segments = [{ from: 0, mt0: startTime, speed }];
  }

  get coins(): string[] {
    return this.#tracks.map((t) => t.coin);
  }

  /** The latest block produced (by `next()` or `block(n)`), −1 before the first. */
  get head(): number {
    return this.#head;
  }

  get speed(): number {
    return (this.#segments[this.#segments.length - 1] as SpeedSegment).speed;
  }

  /** Market speed (market ms per exchange ms) from the block after the current one on. */
  setSpeed(speed: number): void {
    if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError('speed must be a positive number');
    if (this.#head < 0) {
      this.#segments = [{ from: 0, mt0: this.startTime, speed }];
      return;
    }
    const last = this.#segments[this.#segments.length - 1] as SpeedSegment;
    if (last.from === this.#head && this.#segments.length > 1) last.speed = speed;
    else this.#segments.push({ from: this.#head, mt0: this.#mt(this.#head), speed });
  }

  /** Exchange time of block n. */
  exchangeTime(n: number): number {
    return this.startTime + n * this.blockMs;
  }

  /** Market time (epoch ms of the rebased recording) block n stands for. */
  marketTime(n: number): number {
    return Math.floor(this.#mt(n) + 1e-6);
  }

  #mt(n: number): number {
    const segs = this.#segments;
    for (let k = segs.length - 1; k > 0; k--) {
      const s = segs[k] as SpeedSegment;
      if (n > s.from) return s.mt0 + (n - s.from) * this.blockMs * s.speed;
    }
    const s0 = segs[0] as SpeedSegment;
    return s0.mt0 + n * this.blockMs * s0.speed;
  }

  /** First block n ≥ 0 whose market time is ≥ T. */
  #firstBlockAtOrAfter(T: number): number {
    const segs = this.#segments;
    for (let k = segs.length - 1; k >= 0; k--) {
      const s = segs[k] as SpeedSegment;
      if (k > 0 && T <= s.mt0) continue;
      const step = this.blockMs * s.speed;
      return Math.max(0, s.from + Math.ceil((T - s.mt0) / step - 1e-9));
    }
    return 0;
  }

  /** The next block (head + 1); makes it current. */
  next(): MarketBlock[] {
    return this.block(this.#head + 1);
  }

  /** Block n, one entry per coin in series order; producing it makes it current if it is newer. */
  block(n: number): MarketBlock[] {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('block number must be an integer ≥ 0');
    if (this.#last?.n === n) return this.#last.blocks;
    const mt = this.#mt(n);
    const mtPrev = this.#mt(n - 1);
    const time = this.exchangeTime(n);
    const marketTime = Math.floor(mt + 1e-6);
    const blocks = this.#tracks.map((t) => this.#coinBlock(t, n, mt, mtPrev, time, marketTime));
    if (n > this.#head) this.#head = n;
    this.#last = { n, blocks };
    return blocks;
  }

  // ---------------------------------------------------------------- price path

  #anchorsOf(t: CoinTrack, j: number, cb: CycleBars, r: number): Anchors {
    const a = this.#anchors;
    const hsh = hash32(this.seed, t.key, S_ANCHOR, j);
    const o = cb.o[r] as number, c = cb.c[r] as number;
    // Up bars tend to print their low first, down bars their high first; the draw stays seeded.
    const pLowFirst = c > o ? 0.7 : c < o ? 0.3 : 0.5;
    const lowFirst = (hsh & 0xffff) / 65536 < pLowFirst;
    const u1 = ((hsh >>> 16) & 0xff) / 256, u2 = (hsh >>> 24) / 256;
    a.t1 = 3000 + u1 * 30_000;
    a.t2 = a.t1 + 6000 + u2 * (57_000 - a.t1 - 6000);
    a.e1 = lowFirst ? (cb.l[r] as number) : (cb.h[r] as number);
    a.e2 = lowFirst ? (cb.h[r] as number) : (cb.l[r] as number);
    return a;
  }

  /** Virtual bar index containing market time T (≥ 0). */
  #barOf(T: number): number {
    return Math.max(0, Math.floor((T - this.baseTime) / BAR_MS));
  }

  /** Evaluates the path at market time T into t.mid / t.oracle (price units); returns the bar index. */
  #path(t: CoinTrack, T: number): number {
    const j = this.#barOf(T);
    const tau = Math.min(BAR_MS, Math.max(0, T - this.baseTime - j * BAR_MS));
    const cycle = Math.floor(j / t.nBars);
    const r = j - cycle * t.nBars;
    const cb = t.cycleBars(cycle);
    const a = this.#anchorsOf(t, j, cb, r);
    const lo = cb.l[r] as number, hi = cb.h[r] as number;
    let A: number, B: number, ta: number, tb: number;
    if (tau < a.t1) [A, B, ta, tb] = [cb.o[r] as number, a.e1, 0, a.t1];
    else if (tau < a.t2) [A, B, ta, tb] = [a.e1, a.e2, a.t1, a.t2];
    else [A, B, ta, tb] = [a.e2, cb.c[r] as number, a.t2, BAR_MS];
    const u = (tau - ta) / (tb - ta);
    const lin = A + (B - A) * u;
    let p = lin;
    if (hi > lo) {
      // Value noise on two scales (2 s and 0.5 s knots), pinned to zero at every anchor.
      const k = Math.floor(tau / 2000), f = tau / 2000 - k;
      const kf = Math.floor(tau / 500), ff = tau / 500 - kf;
      const coarse = s11(this.seed, t.key, S_NOISE, j, k) * (1 - f) + s11(this.seed, t.key, S_NOISE, j, k + 1) * f;
      const fine = s11(this.seed, t.key, S_NOISE_FINE, j, kf) * (1 - ff) + s11(this.seed, t.key, S_NOISE_FINE, j, kf + 1) * ff;
      p = lin + NOISE_SHARE * (hi - lo) * 4 * u * (1 - u) * (coarse + 0.5 * fine);
    }
    t.mid = Math.min(hi, Math.max(lo, Math.round(p)));
    t.oracle = Math.min(hi, Math.max(lo, Math.round(lin)));
    return j;
  }

  /** Cumulative recorded volume in lots up to market time T (continuous, linear within a bar). */
  #cumLots(t: CoinTrack, T: number): number {
    if (T <= this.baseTime) return 0;
    const x = (T - this.baseTime) / BAR_MS;
    const j = Math.floor(x);
    return t.lotsBefore(j) + (x - j) * (t.lots[j % t.nBars] as number);
  }

  // ---------------------------------------------------------------- one block

  #coinBlock(t: CoinTrack, n: number, mt: number, mtPrev: number, time: number, marketTime: number): MarketBlock {
    this.#path(t, mtPrev);
    const prevMid = t.mid;
    const j = this.#path(t, mt);
    const m = t.mid;
    const d = t.d;
    const seed = this.seed;

    // Best bid: the largest valid price strictly below the mid; best ask: the smallest above.
    let bid = m - 1;
    bid -= bid % tickUnits(bid, d);
    let ask = m + 1;
    const ta = tickUnits(ask, d);
    ask = Math.ceil(ask / ta) * ta;
    const sp = hash32(seed, t.key, S_SPREAD, n);
    if ((sp & 3) === 0 && bid > 1) bid -= tickUnits(bid - 1, d);
    if (((sp >>> 2) & 3) === 0) ask += tickUnits(ask, d);

    const pxFloat = m / (POW10[d] as number);
    const bids = this.#side(t, n, bid, -1, pxFloat);
    const asks = this.#side(t, n, ask, 1, pxFloat);

    // Trades: exactly the recorded volume between the two market times, at the touch.
    const trades: SynthTrade[] = [];
    const lots = Math.floor(this.#cumLots(t, mt)) - Math.floor(this.#cumLots(t, mtPrev));
    if (lots > 0 && bids.length > 0 && asks.length > 0) {
      const th = hash32(seed, t.key, S_TRADES, n);
      const want = (th & 0xff) < 154 ? 1 : (th & 0xff) < 230 ? 2 : 3;
      const k = Math.min(lots, want);
      const pBuy = m > prevMid ? 0.8 : m < prevMid ? 0.2 : 0.5;
      let rest = lots;
      for (let i = 0; i < k; i++) {
        const left = k - i - 1;
        const share = (0.5 + u01(seed, t.key, S_TRADE, n, 2 * i)) / (k - i);
        const sz = left === 0 ? rest : Math.min(rest - left, Math.max(1, Math.floor(rest * share)));
        rest -= sz;
        const side: Side = u01(seed, t.key, S_TRADE, n, 2 * i + 1) < pBuy ? 'B' : 'A';
        trades.push({ px: side === 'B' ? (asks[0] as BookLevel).px : (bids[0] as BookLevel).px, sz: t.szDec(sz), side });
      }
    }

    return {
      coin: t.coin,
      block: n,
      time,
      marketTime,
      mid: t.pxDec(m),
      oraclePx: t.pxDec(t.oracle),
      bids,
      asks,
      trades,
      fundingRate: this.#funding(t, j),
    };
  }

  /** One side of the synthetic book, walking away from the touch `start` (dir −1 bids, +1 asks). */
  #side(t: CoinTrack, n: number, start: number, dir: -1 | 1, pxFloat: number): BookLevel[] {
    const out: BookLevel[] = [];
    const d = t.d;
    const seed = this.seed;
    const lotsPerUsd = (POW10[t.szDecimals] as number) / pxFloat;
    let p = start;
    for (let guard = 0; out.length < MAX_BOOK_LEVELS && p > 0 && guard < 4 * MAX_BOOK_LEVELS; guard++) {
      // A level's presence is keyed by its price, so levels persist while the mid moves.
      const phase = hash32(seed, t.key, S_PHASE, p) % PRESENCE_EPOCH;
      const present = out.length === 0 || u01(seed, t.key, S_PRESENCE, p, Math.floor((n + phase) / PRESENCE_EPOCH)) < 0.8;
      if (present) {
        const i = out.length;
        const se = Math.floor((n + (phase % SIZE_EPOCH)) / SIZE_EPOCH);
        const h = hash32(seed, t.key, S_SIZE, p, se);
        const z = ((h & 0x3ff) + ((h >>> 10) & 0x3ff) + ((h >>> 20) & 0x3ff)) / 1024 - 1.5;
        const usd = this.depthUsd * (1 + 0.6 * i) * Math.exp(1.4 * z);
        let lots = usd * lotsPerUsd;
        // Two significant figures: market makers quote round sizes.
        const q = lots >= 10 ? POW10[digitsMinusOne(Math.floor(lots)) - 1] as number : 1;
        lots = Math.max(1, Math.round(lots / q) * q);
        const orders = 1 + Math.min(19, Math.floor((((h >>> 30) + 1) / 4) * (1 + usd / 8000)));
        out.push({ px: t.pxDec(p), sz: t.szDec(lots), n: orders });
      }
      p = dir < 0 ? p - tickUnits(p - 1, d) : p + tickUnits(p, d);
    }
    return out;
  }

  /**
   * Predicted hourly funding from a premium model (no funding data in the recordings): the premium
   * follows the last hour's return (perps run rich in rallies) plus a slow seeded basis, and the
   * rate is clamp(premium / 8, ±0.0004) + 0.0000125. Constant within a market minute.
   */
  #funding(t: CoinTrack, j: number): Decimal {
    if (t.funding?.j === j) return t.funding.rate;
    const closeAt = (jj: number): number => {
      const cycle = Math.floor(jj / t.nBars);
      return t.cycleBars(cycle).c[jj - cycle * t.nBars] as number;
    };
    const momentum = j >= 61 ? closeAt(j - 1) / closeAt(j - 61) - 1 : 0;
    const k = Math.floor(j / 30), f = j / 30 - k;
    const basis = s11(this.seed, t.key, S_BASIS, k) * (1 - f) + s11(this.seed, t.key, S_BASIS, k + 1) * f;
    const premium = Math.max(-0.003, Math.min(0.003, 0.25 * momentum)) + 0.0004 * basis;
    const rate = Math.max(-FUNDING_CAP, Math.min(FUNDING_CAP, premium / 8)) + INTEREST_PER_HOUR;
    const dec = new Decimal(rate.toFixed(10));
    t.funding = { j, rate: dec };
    return dec;
  }

  // ---------------------------------------------------------------- candles

  #track(coin: string): CoinTrack | undefined {
    return this.#byCoin.get(coin);
  }

  /** The current bar at block h: [j, open, hi, lo, close] in price units, hi/lo as seen so far. */
  #partial(t: CoinTrack, h: number): { j: number; o: number; hi: number; lo: number; c: number; lots: number; n: number } {
    const T = this.#mt(h);
    const j = this.#barOf(T);
    const cycle = Math.floor(j / t.nBars);
    const r = j - cycle * t.nBars;
    const cb = t.cycleBars(cycle);
    const o = cb.o[r] as number;
    let pc = t.partial;
    if (pc === undefined || pc.j !== j || pc.upTo > h) {
      pc = { j, upTo: this.#firstBlockAtOrAfter(this.baseTime + j * BAR_MS) - 1, hi: o, lo: o };
      t.partial = pc;
    }
    for (let b = pc.upTo + 1; b <= h; b++) {
      this.#path(t, this.#mt(b));
      if (t.mid > pc.hi) pc.hi = t.mid;
      if (t.mid < pc.lo) pc.lo = t.mid;
    }
    pc.upTo = Math.max(pc.upTo, h);
    this.#path(t, T);
    const c = t.mid;
    let { hi, lo } = pc;
    // The anchors already passed are on the path even if no block sampled them exactly.
    const tau = T - this.baseTime - j * BAR_MS;
    const a = this.#anchorsOf(t, j, cb, r);
    for (const [at, v] of [[a.t1, a.e1], [a.t2, a.e2]] as const) {
      if (tau >= at) {
        hi = Math.max(hi, v);
        lo = Math.min(lo, v);
      }
    }
    const lots = Math.floor(this.#cumLots(t, T)) - t.lotsBefore(j);
    const n = Math.floor((t.tradesOf(j) * tau) / BAR_MS);
    return { j, o, hi: Math.max(hi, c), lo: Math.min(lo, c), c, lots, n };
  }

  /** Aggregate of complete bars [j0, j1) (j1 > j0). */
  #complete(t: CoinTrack, j0: number, j1: number): { o: number; hi: number; lo: number; c: number; lots: number; n: number } {
    let hi = -Infinity, lo = Infinity, n = 0, o = 0, c = 0;
    for (let j = j0; j < j1; j++) {
      const cycle = Math.floor(j / t.nBars);
      const r = j - cycle * t.nBars;
      const cb = t.cycleBars(cycle);
      if (j === j0) o = cb.o[r] as number;
      c = cb.c[r] as number;
      hi = Math.max(hi, cb.h[r] as number);
      lo = Math.min(lo, cb.l[r] as number);
      n += t.tradesOf(j);
    }
    return { o, hi, lo, c, lots: t.lotsBefore(j1) - t.lotsBefore(j0), n };
  }

  #wire(t: CoinTrack, interval: CandleInterval, bs: number, a: { o: number; hi: number; lo: number; c: number; lots: number; n: number }): CandleWire {
    return {
      t: bs,
      T: bucketEnd(bs, interval) - 1,
      s: t.coin,
      i: interval,
      o: unitsToWire(a.o, t.d),
      c: unitsToWire(a.c, t.d),
      h: unitsToWire(a.hi, t.d),
      l: unitsToWire(a.lo, t.d),
      v: unitsToWire(a.lots, t.szDecimals),
      n: a.n,
    };
  }

  /** Aggregates bucket [bs, be) as seen at block h (jNow = the bar in progress). */
  #bucket(t: CoinTrack, interval: CandleInterval, bs: number, h: number, jNow: number): CandleWire | undefined {
    const be = bucketEnd(bs, interval);
    const j0 = Math.max(0, Math.ceil((bs - this.baseTime) / BAR_MS));
    const jEnd = Math.ceil((be - this.baseTime) / BAR_MS);
    const j1 = Math.min(jEnd, jNow);
    const part = jNow < jEnd && jNow >= j0 ? this.#partial(t, h) : undefined;
    const full = j1 > j0 ? this.#complete(t, j0, j1) : undefined;
    if (full === undefined && part === undefined) return undefined;
    if (full === undefined) return this.#wire(t, interval, bs, part!);
    if (part === undefined) return this.#wire(t, interval, bs, full);
    return this.#wire(t, interval, bs, {
      o: full.o,
      hi: Math.max(full.hi, part.hi),
      lo: Math.min(full.lo, part.lo),
      c: part.c,
      lots: full.lots + part.lots,
      n: full.n + part.n,
    });
  }

  /**
   * Candles of `coin` overlapping [startTime, endTime] (market time), never beyond the current
   * block, at most the 5000 most recent; the bucket in progress is partial. Unknown coin or
   * interval → [] (the server validates and answers its own error first).
   */
  candleSnapshot(coin: string, interval: CandleInterval, startTime: number, endTime?: number): CandleWire[] {
    const t = this.#track(coin);
    if (t === undefined || !isCandleInterval(interval)) return [];
    const h = Math.max(0, this.#head);
    const now = this.#mt(h);
    const end = Math.min(endTime ?? Infinity, now);
    const from = Math.max(startTime, this.baseTime);
    if (!(from <= end)) return [];
    const starts: number[] = [];
    for (let bs = bucketStart(from, interval); bs <= end; bs = bucketEnd(bs, interval)) starts.push(bs);
    const jNow = this.#barOf(now);
    const out: CandleWire[] = [];
    for (const bs of starts.slice(-MAX_CANDLES)) {
      const c = this.#bucket(t, interval, bs, h, jNow);
      if (c) out.push(c);
    }
    return out;
  }

  /** The candle in progress for (coin, interval) at the current block — what the `candle` channel pushes. */
  currentCandle(coin: string, interval: CandleInterval): CandleWire | undefined {
    const t = this.#track(coin);
    if (t === undefined || !isCandleInterval(interval)) return undefined;
    const h = Math.max(0, this.#head);
    const now = this.#mt(h);
    const jNow = this.#barOf(now);
    const bs = bucketStart(now, interval);
    const j0 = Math.max(0, Math.ceil((bs - this.baseTime) / BAR_MS));
    // Complete bars of the bucket are aggregated once and extended as bars close.
    let cc = t.candles.get(interval);
    if (cc === undefined || cc.bs !== bs || cc.j1 > jNow) {
      cc = { bs, j0, j1: j0, o: 0, hi: -Infinity, lo: Infinity, c: 0, n: 0 };
      t.candles.set(interval, cc);
    }
    if (jNow > cc.j1) {
      const add = this.#complete(t, cc.j1, jNow);
      if (cc.j1 === cc.j0) cc.o = add.o;
      cc.hi = Math.max(cc.hi, add.hi);
      cc.lo = Math.min(cc.lo, add.lo);
      cc.c = add.c;
      cc.n += add.n;
      cc.j1 = jNow;
    }
    const part = this.#partial(t, h);
    if (cc.j1 === cc.j0) return this.#wire(t, interval, bs, part);
    return this.#wire(t, interval, bs, {
      o: cc.o,
      hi: Math.max(cc.hi, part.hi),
      lo: Math.min(cc.lo, part.lo),
      c: part.c,
      lots: t.lotsBefore(jNow) - t.lotsBefore(cc.j0) + part.lots,
      n: cc.n + part.n,
    });
  }

  /** Current candles for a list of subscriptions (unknown coins / intervals are skipped). */
  currentCandles(subs: readonly { readonly coin: string; readonly interval: CandleInterval }[]): CandleWire[] {
    const out: CandleWire[] = [];
    for (const s of subs) {
      const c = this.currentCandle(s.coin, s.interval);
      if (c) out.push(c);
    }
    return out;
  }
}
