/**
 * The backtest's market: recorded 1-minute candles → `MarketBlock`s for the simulator's matching
 * engine, on one shared timeline.
 *
 * Each bar j is walked as a short price path, one block per point: open → first extreme → second
 * extreme → close (4 points; `pointsPerBar` 2 walks open → close only), at offsets 0, 15, 30 and
 * 45 s of the bar. Which extreme comes first is a seeded draw weighted like the simulator's replay
 * (an up bar tends to print its low first). So the engine sees every bar's high and low: a stop
 * or a take-profit the bar touched fires, one it did not touch does not.
 *
 * Why not `MarketReplay` blocks: the replay is built to look alive on a live feed (noise on two
 * time scales, a 20-level book per side, synthetic trades): measured at ~20 µs per coin-block for
 * the replay alone and ~45 µs more for the engine to install it, which by itself caps a backtest
 * near 15,000 candles/s. The replay is still the source of the funding rate (its premium model,
 * read once per coin per hour), so paper trading and backtests pay the same funding.
 *
 * Invariants:
 *  - pure function of (series, seed, options): no clock, no hidden generator state (draws are
 *    counter-based hashes, src/sim/market/prng.ts);
 *  - the book around price p is never crossed: best bid < p < best ask, every price a valid
 *    Hyperliquid price for the coin (five significant figures, 6 − szDecimals decimals), every
 *    size a whole lot; `levels` levels a side, one tick apart, `depthUsd × (1 + 0.6·i)` each;
 *  - a path price never leaves [low, high] of its bar.
 * Timeline: bar j of every coin opens at `t0 + j·60 000` (coins recorded on different dates are
 * rebased onto the first coin's dates); a coin with fewer bars simply ends earlier.
 */
import { Decimal } from '../domain/decimal.ts';
import type { Candle } from '../domain/types.ts';
import type { BookLevel, MarketBlock } from '../sim/types.ts';
import { MarketReplay, MINUTE_MS, tickUnits, unitsToWire, type CoinSeries } from '../sim/market/index.ts';
import { hash32, hashString } from '../sim/market/prng.ts';

const PERP_MAX_DECIMALS = 6;
const HOUR_MS = 3_600_000;

export interface CandleMarketOptions {
  readonly series: readonly CoinSeries[];
  readonly seed: number;
  /** 4 (open, extremes, close; default) or 2 (open, close). */
  readonly pointsPerBar?: 2 | 4;
  /** Synthetic liquidity levels a side (default 8). */
  readonly levels?: number;
  /** USD notional of the best level (default 50 000); level i holds (1 + 0.6·i) times that. */
  readonly depthUsd?: number;
}

/** One coin's bars in price units (10^-(6 − szDecimals)) and its caches. */
class CoinTape {
  readonly coin: string;
  readonly szDecimals: number;
  readonly d: number;
  readonly key: number;
  readonly n: number;
  readonly o: Float64Array;
  readonly h: Float64Array;
  readonly l: Float64Array;
  readonly c: Float64Array;
  readonly v: Float64Array;
  readonly #px = new Map<number, Decimal>();
  readonly #sz = new Map<number, Decimal>();

  constructor(s: CoinSeries) {
    this.coin = s.coin;
    this.szDecimals = s.szDecimals;
    this.d = PERP_MAX_DECIMALS - s.szDecimals;
    this.key = hashString(s.coin);
    this.n = s.bars.length;
    const scale = 10 ** this.d;
    const units = (x: Decimal): number => Math.max(1, Math.round(x.toNumber() * scale));
    this.o = new Float64Array(this.n);
    this.h = new Float64Array(this.n);
    this.l = new Float64Array(this.n);
    this.c = new Float64Array(this.n);
    this.v = new Float64Array(this.n);
    s.bars.forEach((b, j) => {
      this.o[j] = units(b.o);
      this.h[j] = units(b.h);
      this.l[j] = units(b.l);
      this.c[j] = units(b.c);
      this.v[j] = b.v.toNumber();
    });
  }

  pxDec(u: number): Decimal {
    let v = this.#px.get(u);
    if (v === undefined) {
      if (this.#px.size > 100_000) this.#px.clear();
      v = new Decimal(unitsToWire(u, this.d, false));
      this.#px.set(u, v);
    }
    return v;
  }

  szDec(lots: number): Decimal {
    let v = this.#sz.get(lots);
    if (v === undefined) {
      if (this.#sz.size > 100_000) this.#sz.clear();
      v = new Decimal(unitsToWire(lots, this.szDecimals, false));
      this.#sz.set(lots, v);
    }
    return v;
  }
}

export class CandleMarket {
  readonly seed: number;
  /** Open time of bar 0 on the shared timeline. */
  readonly t0: number;
  readonly pointsPerBar: 2 | 4;
  readonly levels: number;
  readonly depthUsd: number;
  /** Bars on the timeline: the longest series. */
  readonly length: number;
  readonly #tapes: CoinTape[];
  readonly #byCoin = new Map<string, CoinTape>();
  readonly #replay: MarketReplay;
  readonly #funding = new Map<string, { hour: number; rate: Decimal }>();
  readonly #points = [0, 0, 0, 0];

  constructor(opts: CandleMarketOptions) {
    if (opts.series.length === 0) throw new RangeError('at least one coin series is needed');
    if (!Number.isInteger(opts.seed)) throw new RangeError('seed must be an integer');
    this.seed = opts.seed | 0;
    this.pointsPerBar = opts.pointsPerBar ?? 4;
    this.levels = opts.levels ?? 8;
    this.depthUsd = opts.depthUsd ?? 50_000;
    if (!Number.isInteger(this.levels) || this.levels < 1 || this.levels > 20) throw new RangeError('levels must be an integer in [1, 20]');
    if (!(this.depthUsd > 0)) throw new RangeError('depthUsd must be positive');
    this.#tapes = opts.series.map((s) => new CoinTape(s));
    for (const t of this.#tapes) this.#byCoin.set(t.coin, t);
    this.t0 = opts.series[0]!.bars[0]!.t;
    this.length = Math.max(...this.#tapes.map((t) => t.n));
    // The replay on the same timeline (bar j opens at t0 + j·1 min) serves the funding rate.
    this.#replay = new MarketReplay({ seed: this.seed, series: opts.series, blockMs: MINUTE_MS, speed: 1, startTime: this.t0 + MINUTE_MS, historyBars: 1 });
  }

  get coins(): string[] {
    return this.#tapes.map((t) => t.coin);
  }

  /** Bars of `coin` (its own recording's length). */
  barsOf(coin: string): number {
    return this.#byCoin.get(coin)?.n ?? 0;
  }

  /** Open time of bar j. */
  barTime(j: number): number {
    return this.t0 + j * MINUTE_MS;
  }

  /** Offset within a bar of path point i. */
  pointOffset(i: number): number {
    return (i * MINUTE_MS) / 4;
  }

  /** Bar j of `coin` as the feed delivers it once closed (undefined past the coin's recording). */
  candle(coin: string, j: number): Candle | undefined {
    const t = this.#byCoin.get(coin);
    if (t === undefined || j < 0 || j >= t.n) return undefined;
    const s = 10 ** -t.d;
    const time = this.barTime(j);
    return { coin, interval: '1m', t: time, T: time + MINUTE_MS - 1, o: t.o[j]! * s, h: t.h[j]! * s, l: t.l[j]! * s, c: t.c[j]! * s, v: t.v[j]!, closed: true };
  }

  /** Close of bar j as a Decimal (what the market's mid stands at when the bar closes). */
  closePx(coin: string, j: number): Decimal | undefined {
    const t = this.#byCoin.get(coin);
    if (t === undefined || j < 0 || j >= t.n) return undefined;
    return t.pxDec(t.c[j]!);
  }

  /** Price (units) of path point i of bar j: 0 open, then the two extremes (seeded order), then close. */
  #path(t: CoinTape, j: number): number[] {
    const p = this.#points;
    const o = t.o[j]!, c = t.c[j]!;
    if (this.pointsPerBar === 2) {
      p[0] = o;
      p[1] = c;
      return p;
    }
    const pLowFirst = c > o ? 0.7 : c < o ? 0.3 : 0.5;
    const lowFirst = (hash32(this.seed, t.key, 1, j) & 0xffff) / 65536 < pLowFirst;
    p[0] = o;
    p[1] = lowFirst ? t.l[j]! : t.h[j]!;
    p[2] = lowFirst ? t.h[j]! : t.l[j]!;
    p[3] = c;
    return p;
  }

  /** Price of path point i of bar j (i = −1: the close). */
  pointPx(coin: string, j: number, i: number): Decimal {
    const t = this.#byCoin.get(coin);
    if (t === undefined || j < 0 || j >= t.n) throw new RangeError(`${coin}: no bar ${j}`);
    return t.pxDec(i < 0 ? t.c[j]! : this.#path(t, j)[i]!);
  }

  /** Path points of bar j (price units → Decimal), open first. */
  pathPrices(coin: string, j: number): Decimal[] {
    const t = this.#byCoin.get(coin);
    if (t === undefined || j < 0 || j >= t.n) return [];
    return this.#path(t, j).slice(0, this.pointsPerBar).map((u) => t.pxDec(u));
  }

  /**
   * The block for path point `i` of bar j of `coin` at exchange time `time`; `i = -1` is the bar's
   * close (the state of the market once the bar has closed).
   */
  block(coin: string, j: number, i: number, time: number): MarketBlock {
    const t = this.#byCoin.get(coin);
    if (t === undefined || j < 0 || j >= t.n) throw new RangeError(`${coin}: no bar ${j}`);
    const u = i < 0 ? t.c[j]! : this.#path(t, j)[i]!;
    const mid = t.pxDec(u);
    return {
      coin,
      block: j * 4 + (i < 0 ? 3 : i),
      time,
      marketTime: time,
      mid,
      oraclePx: mid,
      bids: this.#side(t, u, -1),
      asks: this.#side(t, u, 1),
      trades: [],
      fundingRate: this.#fundingRate(t, j, time),
    };
  }

  #side(t: CoinTape, m: number, dir: -1 | 1): BookLevel[] {
    const d = t.d;
    let p: number;
    if (dir < 0) {
      p = m - 1;
      p -= p % tickUnits(p, d);
    } else {
      p = m + 1;
      const tk = tickUnits(p, d);
      p = Math.ceil(p / tk) * tk;
    }
    const lotsPerUsd = 10 ** t.szDecimals / (m / 10 ** d);
    const out: BookLevel[] = [];
    for (let i = 0; i < this.levels && p > 0; i++) {
      let lots = this.depthUsd * (1 + 0.6 * i) * lotsPerUsd;
      // Two significant figures: market makers quote round sizes.
      const q = lots >= 10 ? 10 ** (Math.floor(Math.log10(lots)) - 1) : 1;
      lots = Math.max(1, Math.round(lots / q) * q);
      out.push({ px: t.pxDec(p), sz: t.szDec(lots), n: 1 + i });
      p = dir < 0 ? p - tickUnits(p - 1, d) : p + tickUnits(p, d);
    }
    return out;
  }

  /** The replay's predicted hourly funding for the hour containing `time` (read once per coin per hour). */
  #fundingRate(t: CoinTape, j: number, time: number): Decimal {
    const hour = Math.floor(time / HOUR_MS);
    const f = this.#funding.get(t.coin);
    if (f?.hour === hour) return f.rate;
    // Replay block n stands for the open of bar n + 1 (historyBars = 1).
    const blocks = this.#replay.block(Math.max(0, j - 1));
    for (const b of blocks) this.#funding.set(b.coin, { hour, rate: b.fundingRate });
    return this.#funding.get(t.coin)!.rate;
  }
}
