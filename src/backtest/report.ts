/**
 * The backtest report: the numbers (pure functions over trades and the equity curve) and their
 * three renderings: a terminal table, JSON, and a self-contained HTML page with an equity curve
 * and a drawdown chart drawn as inline SVG (no script, no CDN, no network).
 *
 * Definitions (stated in the report itself too):
 *  - net PnL = final equity − initial equity: closed trades (fees included), funding, and the
 *    unrealized PnL of positions still open at the end (marked at their last close, net of the
 *    entry fees they already paid);
 *  - win rate = trades with net PnL > 0 / trades (a trade = one closing fill's share of a position);
 *  - profit factor = Σ winning net PnL / |Σ losing net PnL| (null when nothing lost);
 *  - Sharpe and Sortino are computed on HOURLY returns of the equity curve (equity at each UTC
 *    hour boundary), risk-free rate 0, annualized × √8760 (crypto trades 24 × 365). Sortino's
 *    downside deviation is √(mean(min(r, 0)²)) over all hours; null with fewer than two returns
 *    or no dispersion;
 *  - max drawdown: the largest fall from a running peak of the equity curve (sampled at every bar
 *    close), in USD and in % of that peak; the two maxima may come from different falls;
 *  - exposure = % of bars (1-minute) closing with a position open (any market; per market: that
 *    market's position over that market's bars).
 * Invariants: every function is pure and deterministic; JSON output carries no wall-clock value,
 * so the same run gives the same bytes; money stays Decimal until rendered.
 */
import { Decimal, ZERO } from '../domain/decimal.ts';
import type { Coin, Direction } from '../domain/types.ts';

export const HOUR_MS = 3_600_000;
export const PERIODS_PER_YEAR_HOURLY = 24 * 365;
const MAX_CURVE_POINTS = 2000;

// ─────────────────────────────────────────────── pure metrics

/** Largest drawdown of a series: absolute (peak − value) and relative ((peak − value) / peak). */
export function maxDrawdown(values: ArrayLike<number>): { readonly abs: number; readonly pct: number; readonly peakIndex: number; readonly troughIndex: number } {
  let peak = -Infinity, peakAt = 0, abs = 0, pct = 0, peakIndex = 0, troughIndex = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > peak) {
      peak = v;
      peakAt = i;
    }
    const dd = peak - v;
    if (dd > abs) {
      abs = dd;
      peakIndex = peakAt;
      troughIndex = i;
    }
    if (peak > 0 && dd / peak > pct) pct = dd / peak;
  }
  return { abs, pct: pct * 100, peakIndex, troughIndex };
}

/** Drawdown series in % of the running peak (≤ 0). */
export function drawdownSeries(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  let peak = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > peak) peak = v;
    out.push(peak > 0 ? ((v - peak) / peak) * 100 : 0);
  }
  return out;
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Annualized Sharpe ratio (risk-free 0, sample standard deviation); null when undefined. */
export function sharpeRatio(returns: readonly number[], periodsPerYear: number): number | null {
  if (returns.length < 2) return null;
  const m = mean(returns);
  let ss = 0;
  for (const r of returns) ss += (r - m) ** 2;
  const sd = Math.sqrt(ss / (returns.length - 1));
  if (!(sd > 1e-15)) return null;
  return (m / sd) * Math.sqrt(periodsPerYear);
}

/** Annualized Sortino ratio (target 0; downside deviation over all periods); null when undefined. */
export function sortinoRatio(returns: readonly number[], periodsPerYear: number): number | null {
  if (returns.length < 2) return null;
  const m = mean(returns);
  let ss = 0;
  for (const r of returns) if (r < 0) ss += r * r;
  const dd = Math.sqrt(ss / returns.length);
  if (!(dd > 1e-15)) return null;
  return (m / dd) * Math.sqrt(periodsPerYear);
}

/** Σ wins / |Σ losses|; null when there is no loss (infinite or undefined). */
export function profitFactor(pnls: readonly Decimal[]): number | null {
  let win = ZERO, loss = ZERO;
  for (const p of pnls) {
    if (p.gt(0)) win = win.plus(p);
    else if (p.lt(0)) loss = loss.plus(p.neg());
  }
  return loss.isZero() ? null : win.div(loss).toNumber();
}

/**
 * Simple returns between consecutive period boundaries: equity at the last sample at or before
 * each boundary `k·periodMs` from the first sample's period on (the first sample opens the series).
 */
export function periodReturns(times: ArrayLike<number>, values: ArrayLike<number>, periodMs: number): number[] {
  if (times.length === 0) return [];
  const marks: number[] = [values[0]!];
  let period = Math.floor(times[0]! / periodMs);
  let last = values[0]!;
  for (let i = 1; i < times.length; i++) {
    const p = Math.floor(times[i]! / periodMs);
    // Crossing one or more boundaries: the equity held at the boundary is the last one seen.
    for (; period < p; period++) marks.push(last);
    last = values[i]!;
  }
  marks.push(last);
  const out: number[] = [];
  for (let i = 1; i < marks.length; i++) out.push(marks[i - 1]! > 0 ? marks[i]! / marks[i - 1]! - 1 : 0);
  return out;
}

/** At most `max` points, keeping each bucket's lowest and highest (so peaks and troughs survive). */
export function downsample(times: ArrayLike<number>, values: ArrayLike<number>, max = MAX_CURVE_POINTS): { t: number[]; v: number[] } {
  const n = times.length;
  if (n <= max) return { t: Array.from(times), v: Array.from(values) };
  const buckets = Math.floor(max / 2);
  const t: number[] = [], v: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * n) / buckets), to = Math.floor(((b + 1) * n) / buckets);
    let lo = from, hi = from;
    for (let i = from; i < to; i++) {
      if (values[i]! < values[lo]!) lo = i;
      if (values[i]! > values[hi]!) hi = i;
    }
    for (const i of lo <= hi ? [lo, hi] : [hi, lo]) {
      if (t.length > 0 && t[t.length - 1] === times[i]) continue;
      t.push(times[i]!);
      v.push(values[i]!);
    }
  }
  return { t, v };
}

// ─────────────────────────────────────────────── the report

export interface ReportTrade {
  readonly coin: Coin;
  readonly direction: Direction;
  readonly sz: Decimal;
  readonly entryPx: Decimal;
  readonly exitPx: Decimal;
  readonly grossPnl: Decimal;
  readonly fees: Decimal;
  readonly netPnl: Decimal;
  readonly openedAt: number;
  readonly closedAt: number;
  readonly entryCloid?: string;
  readonly exitCloid?: string;
}

export interface ReportInput {
  readonly meta: {
    readonly data: string;
    readonly markets: readonly Coin[];
    readonly seed: number;
    readonly strategy: string;
    readonly strategyParams: unknown;
    readonly risk: unknown;
    readonly pointsPerBar: number;
    readonly bookLevels: number;
    readonly depthUsd: number;
    readonly makerFee: string;
    readonly takerFee: string;
  };
  readonly initialEquity: Decimal;
  readonly finalEquity: Decimal;
  readonly candles: number;
  readonly start: number;
  readonly end: number;
  readonly trades: readonly ReportTrade[];
  readonly funding: readonly { readonly coin: Coin; readonly usdc: Decimal }[];
  readonly signals: { readonly total: number; readonly approved: number; readonly denied: Readonly<Record<string, number>> };
  /** Equity at every bar close (time = the bar's close). */
  readonly equity: { readonly times: ArrayLike<number>; readonly values: ArrayLike<number> };
  readonly exposure: { readonly bars: number; readonly inPosition: number; readonly perCoin: ReadonlyMap<Coin, { readonly bars: number; readonly inPosition: number }> };
  readonly openPositions: readonly { readonly coin: Coin; readonly szi: Decimal; readonly entryPx: Decimal; readonly unrealizedPnl: Decimal }[];
}

export interface MarketBreakdown {
  readonly coin: Coin;
  readonly trades: number;
  readonly wins: number;
  readonly winRatePct: number | null;
  readonly grossPnl: string;
  readonly fees: string;
  readonly funding: string;
  readonly netPnl: string;
  readonly profitFactor: number | null;
  readonly exposurePct: number;
}

export interface BacktestReport {
  readonly version: 1;
  readonly meta: ReportInput['meta'] & { readonly start: string; readonly end: string; readonly candles: number };
  readonly definitions: Readonly<Record<string, string>>;
  readonly summary: {
    readonly initialEquity: string;
    readonly finalEquity: string;
    readonly netPnl: string;
    readonly returnPct: number;
    readonly realizedPnl: string;
    readonly fees: string;
    readonly funding: string;
    readonly unrealizedPnl: string;
    readonly trades: number;
    readonly wins: number;
    readonly losses: number;
    readonly winRatePct: number | null;
    readonly profitFactor: number | null;
    readonly sharpe: number | null;
    readonly sortino: number | null;
    readonly maxDrawdownUsd: string;
    readonly maxDrawdownPct: number;
    readonly exposurePct: number;
    readonly signals: number;
    readonly approved: number;
    readonly denied: Readonly<Record<string, number>>;
  };
  readonly markets: readonly MarketBreakdown[];
  readonly openPositions: readonly { readonly coin: Coin; readonly szi: string; readonly entryPx: string; readonly unrealizedPnl: string }[];
  readonly trades: readonly {
    readonly coin: Coin;
    readonly direction: Direction;
    readonly sz: string;
    readonly entryPx: string;
    readonly exitPx: string;
    readonly grossPnl: string;
    readonly fees: string;
    readonly netPnl: string;
    readonly openedAt: string;
    readonly closedAt: string;
    readonly entryCloid: string | null;
    readonly exitCloid: string | null;
  }[];
  /** Downsampled (≤ 2000 points, each bucket's low and high kept): time (ISO), equity (USD). */
  readonly equityCurve: readonly (readonly [string, number])[];
}

const r4 = (x: number): number => Math.round(x * 1e4) / 1e4;
const r4n = (x: number | null): number | null => (x === null || !Number.isFinite(x) ? null : r4(x));
const iso = (t: number): string => new Date(t).toISOString();
const money = (d: Decimal): string => d.toDecimalPlaces(6).toFixed();
const pctOf = (n: number, d: number): number => (d > 0 ? r4((n / d) * 100) : 0);

export function buildReport(input: ReportInput): BacktestReport {
  const trades = input.trades;
  const sum = (xs: readonly Decimal[]) => xs.reduce((a, x) => a.plus(x), ZERO);
  const fundingBy = new Map<Coin, Decimal>();
  for (const f of input.funding) fundingBy.set(f.coin, (fundingBy.get(f.coin) ?? ZERO).plus(f.usdc));
  const funding = sum([...fundingBy.values()]);
  const realized = sum(trades.map((t) => t.netPnl));
  const fees = sum(trades.map((t) => t.fees));
  const unrealized = sum(input.openPositions.map((p) => p.unrealizedPnl));
  const wins = trades.filter((t) => t.netPnl.gt(0)).length;
  const losses = trades.filter((t) => t.netPnl.lt(0)).length;
  const dd = maxDrawdown(input.equity.values);
  const hourly = periodReturns(input.equity.times, input.equity.values, HOUR_MS);
  const net = input.finalEquity.minus(input.initialEquity);

  const markets: MarketBreakdown[] = input.meta.markets.map((coin) => {
    const ts = trades.filter((t) => t.coin === coin);
    const w = ts.filter((t) => t.netPnl.gt(0)).length;
    const exp = input.exposure.perCoin.get(coin) ?? { bars: 0, inPosition: 0 };
    const fund = fundingBy.get(coin) ?? ZERO;
    return {
      coin,
      trades: ts.length,
      wins: w,
      winRatePct: ts.length > 0 ? pctOf(w, ts.length) : null,
      grossPnl: money(sum(ts.map((t) => t.grossPnl))),
      fees: money(sum(ts.map((t) => t.fees))),
      funding: money(fund),
      netPnl: money(sum(ts.map((t) => t.netPnl)).plus(fund)),
      profitFactor: r4n(profitFactor(ts.map((t) => t.netPnl))),
      exposurePct: pctOf(exp.inPosition, exp.bars),
    };
  });

  const curve = downsample(input.equity.times, input.equity.values);
  return {
    version: 1,
    meta: { ...input.meta, start: iso(input.start), end: iso(input.end), candles: input.candles },
    definitions: {
      netPnl: 'final equity − initial equity: closed trades (fees included) + funding + unrealized PnL of positions open at the end (net of their entry fees)',
      winRate: 'trades with net PnL > 0 / trades; a trade is one closing fill’s share of a position',
      profitFactor: 'Σ winning net PnL / |Σ losing net PnL|; null when nothing lost',
      sharpe: 'hourly equity returns (UTC hour boundaries), risk-free 0, mean / sample sd × √8760',
      sortino: 'hourly equity returns, target 0, mean / √(mean(min(r,0)²)) × √8760',
      maxDrawdown: 'largest fall from a running peak of equity sampled at every bar close (USD; % of that peak)',
      exposure: '% of 1-minute bars closing with a position open',
    },
    summary: {
      initialEquity: money(input.initialEquity),
      finalEquity: money(input.finalEquity),
      netPnl: money(net),
      returnPct: input.initialEquity.gt(0) ? r4(net.div(input.initialEquity).times(100).toNumber()) : 0,
      realizedPnl: money(realized),
      fees: money(fees),
      funding: money(funding),
      unrealizedPnl: money(unrealized),
      trades: trades.length,
      wins,
      losses,
      winRatePct: trades.length > 0 ? pctOf(wins, trades.length) : null,
      profitFactor: r4n(profitFactor(trades.map((t) => t.netPnl))),
      sharpe: r4n(sharpeRatio(hourly, PERIODS_PER_YEAR_HOURLY)),
      sortino: r4n(sortinoRatio(hourly, PERIODS_PER_YEAR_HOURLY)),
      maxDrawdownUsd: dd.abs.toFixed(2),
      maxDrawdownPct: r4(dd.pct),
      exposurePct: pctOf(input.exposure.inPosition, input.exposure.bars),
      signals: input.signals.total,
      approved: input.signals.approved,
      denied: Object.fromEntries(Object.entries(input.signals.denied).sort(([a], [b]) => (a < b ? -1 : 1))),
    },
    markets,
    openPositions: input.openPositions.map((p) => ({ coin: p.coin, szi: p.szi.toFixed(), entryPx: p.entryPx.toFixed(), unrealizedPnl: money(p.unrealizedPnl) })),
    trades: trades.map((t) => ({
      coin: t.coin,
      direction: t.direction,
      sz: t.sz.toFixed(),
      entryPx: t.entryPx.toFixed(),
      exitPx: t.exitPx.toFixed(),
      grossPnl: money(t.grossPnl),
      fees: money(t.fees),
      netPnl: money(t.netPnl),
      openedAt: iso(t.openedAt),
      closedAt: iso(t.closedAt),
      entryCloid: t.entryCloid ?? null,
      exitCloid: t.exitCloid ?? null,
    })),
    equityCurve: curve.t.map((t, i) => [iso(t), Math.round(curve.v[i]! * 100) / 100] as const),
  };
}

/** The report as JSON: stable key order (construction order), two-space indent, trailing newline. */
export function reportToJson(r: BacktestReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

// ─────────────────────────────────────────────── terminal

function table(rows: readonly (readonly string[])[], rightAlign: (col: number) => boolean): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (rightAlign(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '─'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

const fmt = (x: number | null, suffix = ''): string => (x === null ? '—' : `${x.toFixed(2)}${suffix}`);
const usd = (s: string): string => {
  const n = Number(s);
  return `${n < 0 ? '-' : ''}$${Math.abs(n).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
};

export function reportToTable(r: BacktestReport, opts: { maxTrades?: number } = {}): string {
  const s = r.summary;
  const out: string[] = [];
  out.push(`keel backtest · ${r.meta.markets.join(', ')} · ${r.meta.strategy} · seed ${r.meta.seed}`);
  out.push(`${r.meta.start} → ${r.meta.end} · ${r.meta.candles} candles · data ${r.meta.data}`);
  out.push('');
  const kv: [string, string][] = [
    ['initial equity', usd(s.initialEquity)],
    ['final equity', usd(s.finalEquity)],
    ['net PnL', `${usd(s.netPnl)} (${s.returnPct.toFixed(2)} %)`],
    ['  realized (fees incl.)', usd(s.realizedPnl)],
    ['  funding', usd(s.funding)],
    ['  unrealized at end', usd(s.unrealizedPnl)],
    ['fees paid', usd(s.fees)],
    ['trades (won / lost)', `${s.trades} (${s.wins} / ${s.losses})`],
    ['win rate', fmt(s.winRatePct, ' %')],
    ['profit factor', s.profitFactor === null ? (s.wins > 0 ? '∞' : '—') : s.profitFactor.toFixed(2)],
    ['Sharpe (hourly, ann.)', fmt(s.sharpe)],
    ['Sortino (hourly, ann.)', fmt(s.sortino)],
    ['max drawdown', `${usd(s.maxDrawdownUsd)} (${s.maxDrawdownPct.toFixed(2)} %)`],
    ['exposure', `${s.exposurePct.toFixed(2)} % of bars`],
    ['signals (approved)', `${s.signals} (${s.approved})${Object.keys(s.denied).length ? ` · denied: ${Object.entries(s.denied).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`],
  ];
  const w = Math.max(...kv.map(([k]) => k.length));
  for (const [k, v] of kv) out.push(`${k.padEnd(w)}  ${v}`);
  out.push('');
  out.push(
    table(
      [['market', 'trades', 'win %', 'gross', 'fees', 'funding', 'net', 'PF', 'exposure %'], ...r.markets.map((m) => [m.coin, String(m.trades), fmt(m.winRatePct), usd(m.grossPnl), usd(m.fees), usd(m.funding), usd(m.netPnl), m.profitFactor === null ? '—' : m.profitFactor.toFixed(2), m.exposurePct.toFixed(2)])],
      (c) => c > 0,
    ),
  );
  if (r.openPositions.length > 0) {
    out.push('');
    out.push(`open at end: ${r.openPositions.map((p) => `${p.coin} ${p.szi} @ ${p.entryPx} (uPnL ${usd(p.unrealizedPnl)})`).join('; ')}`);
  }
  const max = opts.maxTrades ?? 20;
  if (r.trades.length > 0 && max > 0) {
    out.push('');
    const shown = r.trades.slice(-max);
    out.push(
      table(
        [['closed (UTC)', 'market', 'dir', 'size', 'entry', 'exit', 'fees', 'net'], ...shown.map((t) => [t.closedAt.slice(0, 19).replace('T', ' '), t.coin, t.direction, t.sz, t.entryPx, t.exitPx, usd(t.fees), usd(t.netPnl)])],
        (c) => c >= 3,
      ),
    );
    if (r.trades.length > max) out.push(`(last ${max} of ${r.trades.length} trades; all of them are in --json / --html)`);
  }
  return `${out.join('\n')}\n`;
}

// ─────────────────────────────────────────────── HTML

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const CHART_COLORS = { equity: '#1f6feb', drawdown: '#d1242f' } as const;

/** An SVG line (or filled area down to `baseline`) chart of (t, v) points, with min / max labels. */
function svgChart(id: string, title: string, t: readonly number[], v: readonly number[], color: string, area: boolean, unit: string): string {
  const W = 960, H = 260, L = 70, R = 12, T = 28, B = 28;
  const t0 = t[0] ?? 0, t1 = t[t.length - 1] ?? 1;
  let lo = Math.min(...v), hi = Math.max(...v);
  if (!(hi > lo)) {
    const pad = Math.max(1, Math.abs(hi) * 0.001);
    lo -= pad;
    hi += pad;
  }
  if (area) hi = Math.max(hi, 0);
  const x = (ti: number) => L + ((ti - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (vi: number) => T + ((hi - vi) / (hi - lo)) * (H - T - B);
  const pts = t.map((ti, i) => `${x(ti).toFixed(1)},${y(v[i]!).toFixed(1)}`);
  const path = pts.length > 0 ? `M${pts.join('L')}` : '';
  const shape = area
    ? `<path class="series" d="${path}L${x(t1).toFixed(1)},${y(Math.min(hi, 0)).toFixed(1)}L${x(t0).toFixed(1)},${y(Math.min(hi, 0)).toFixed(1)}Z" fill="${color}" fill-opacity="0.35" stroke="${color}" stroke-width="2"/>`
    : `<path class="series" d="${path}" fill="none" stroke="${color}" stroke-width="2.5" stroke-linejoin="round"/>`;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const val = hi - f * (hi - lo);
      const yy = T + f * (H - T - B);
      return `<line x1="${L}" x2="${W - R}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="#d0d7de" stroke-width="1"/><text x="${L - 6}" y="${(yy + 4).toFixed(1)}" text-anchor="end">${esc(val.toFixed(2))}${unit}</text>`;
    })
    .join('');
  const xl = (ti: number, anchor: string, xx: number) => `<text x="${xx}" y="${H - 8}" text-anchor="${anchor}">${esc(new Date(ti).toISOString().slice(0, 16).replace('T', ' '))}</text>`;
  return `<figure><svg id="${id}" role="img" aria-label="${esc(title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg"><text x="${L}" y="18" class="title">${esc(title)}</text>${grid}${shape}${xl(t0, 'start', L)}${xl(t1, 'end', W - R)}</svg></figure>`;
}

export function reportToHtml(r: BacktestReport): string {
  const s = r.summary;
  const t = r.equityCurve.map(([ts]) => Date.parse(ts));
  const v = r.equityCurve.map(([, e]) => e);
  const dd = drawdownSeries(v);
  const row = (cells: readonly string[], head = false) => `<tr>${cells.map((c) => (head ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`;
  const kv: [string, string][] = [
    ['Net PnL', `${usd(s.netPnl)} (${s.returnPct.toFixed(2)} %)`],
    ['Final equity', usd(s.finalEquity)],
    ['Trades', `${s.trades} (${s.wins} won, ${s.losses} lost)`],
    ['Win rate', fmt(s.winRatePct, ' %')],
    ['Profit factor', s.profitFactor === null ? (s.wins > 0 ? '∞' : '—') : s.profitFactor.toFixed(2)],
    ['Sharpe (hourly, ann.)', fmt(s.sharpe)],
    ['Sortino (hourly, ann.)', fmt(s.sortino)],
    ['Max drawdown', `${usd(s.maxDrawdownUsd)} (${s.maxDrawdownPct.toFixed(2)} %)`],
    ['Exposure', `${s.exposurePct.toFixed(2)} %`],
    ['Fees', usd(s.fees)],
    ['Funding', usd(s.funding)],
    ['Unrealized at end', usd(s.unrealizedPnl)],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keel backtest · ${esc(r.meta.markets.join(', '))}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#59636e;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:12px 0 20px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px}.card b{display:block;font-size:12px;color:#59636e;font-weight:500}
figure{margin:0 0 16px}svg text{font-size:11px;fill:#59636e}svg text.title{font-size:13px;fill:#1f2328;font-weight:600}
table{border-collapse:collapse;width:100%;margin:8px 0 20px;font-variant-numeric:tabular-nums}th,td{border-bottom:1px solid #d0d7de;padding:4px 6px;text-align:right}th:first-child,td:first-child{text-align:left}
details{margin:8px 0}dl{font-size:12px;color:#59636e}
</style></head><body>
<h1>keel backtest</h1>
<p class="sub">${esc(r.meta.markets.join(', '))} · ${esc(r.meta.strategy)} · seed ${r.meta.seed} · ${esc(r.meta.start)} → ${esc(r.meta.end)} · ${r.meta.candles} candles · data ${esc(r.meta.data)}</p>
<div class="cards">${kv.map(([k, val]) => `<div class="card"><b>${esc(k)}</b>${esc(val)}</div>`).join('')}</div>
${svgChart('equity-chart', 'Equity (USD)', t, v, CHART_COLORS.equity, false, '')}
${svgChart('drawdown-chart', 'Drawdown (% of peak)', t, dd, CHART_COLORS.drawdown, true, ' %')}
<h2>Per market</h2>
<table>${row(['Market', 'Trades', 'Win %', 'Gross', 'Fees', 'Funding', 'Net', 'PF', 'Exposure %'], true)}${r.markets.map((m) => row([m.coin, String(m.trades), fmt(m.winRatePct), usd(m.grossPnl), usd(m.fees), usd(m.funding), usd(m.netPnl), m.profitFactor === null ? '—' : m.profitFactor.toFixed(2), m.exposurePct.toFixed(2)])).join('')}</table>
<h2>Trades (${r.trades.length})</h2>
<table>${row(['Closed (UTC)', 'Market', 'Dir', 'Size', 'Entry', 'Exit', 'Gross', 'Fees', 'Net'], true)}${r.trades.map((tr) => row([tr.closedAt.slice(0, 19).replace('T', ' '), tr.coin, tr.direction, tr.sz, tr.entryPx, tr.exitPx, usd(tr.grossPnl), usd(tr.fees), usd(tr.netPnl)])).join('')}</table>
<details><summary>Definitions</summary><dl>${Object.entries(r.definitions).map(([k, d]) => `<dt>${esc(k)}</dt><dd>${esc(d)}</dd>`).join('')}</dl></details>
</body></html>
`;
}
