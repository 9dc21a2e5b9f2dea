/**
 * The HTML report in a real browser: a backtest on the bundled data writes its report, headless
 * Chromium (Debian's `chromium`, driven by playwright-core) opens the file with the network off,
 * and the screenshots of the two charts are decoded (PNG → pixels, here) and checked for the
 * equity line's and the drawdown area's colours: the charts are drawn, not merely present.
 *
 * Without Chromium at /usr/bin/chromium (or KEEL_CHROMIUM) the test fails and says how to install
 * it, unless KEEL_SKIP_BROWSER=1, where only the page's structure is checked.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CHART_COLORS, reportToHtml, runBacktest } from '../../src/backtest/index.ts';
import { loadBundledSeries } from '../../src/sim/market/index.ts';

const CHROMIUM = process.env['KEEL_CHROMIUM'] ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Decodes an 8-bit, non-interlaced RGB / RGBA PNG (what Chromium's screenshots are) to RGBA. */
function decodePng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8]!, interlace = data[12]!;
      colorType = data[9]!;
      if (depth !== 8 || interlace !== 0 || (colorType !== 2 && colorType !== 6)) throw new Error(`unsupported PNG (depth ${depth}, colour type ${colorType}, interlace ${interlace})`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + x]! : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp]! : 0;
      const v = raw[src + x]!;
      let out: number;
      switch (filter) {
        case 0: out = v; break;
        case 1: out = v + a; break;
        case 2: out = v + b; break;
        case 3: out = v + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          out = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`bad PNG filter ${filter}`);
      }
      px[y * stride + x] = out & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[i * 4] = px[i * bpp]!;
    rgba[i * 4 + 1] = px[i * bpp + 1]!;
    rgba[i * 4 + 2] = px[i * bpp + 2]!;
    rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3]! : 255;
  }
  return { width, height, rgba };
}

const hex = (h: string): [number, number, number] => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];

/** Pixels within `tol` (per channel) of `rgb`. */
function countNear(img: { rgba: Uint8Array }, rgb: readonly number[], tol: number): number {
  let n = 0;
  for (let i = 0; i < img.rgba.length; i += 4) {
    if (Math.abs(img.rgba[i]! - rgb[0]!) <= tol && Math.abs(img.rgba[i + 1]! - rgb[1]!) <= tol && Math.abs(img.rgba[i + 2]! - rgb[2]!) <= tol) n++;
  }
  return n;
}

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bt-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backtest HTML report in headless Chromium', () => {
  it('renders the equity curve and the drawdown chart', async () => {
    const { report } = await runBacktest({ series: loadBundledSeries(), dataLabel: 'bundled', seed: 1, strategy: { name: 'enhanced-macd', params: {} }, risk: { entrySlippagePct: 0.05, minRewardRisk: 1.2 } });
    expect(report.summary.maxDrawdownPct).toBeGreaterThan(0);
    const html = reportToHtml(report);
    const file = path.join(dir, 'report.html');
    writeFileSync(file, html);

    if (!existsSync(CHROMIUM)) {
      if (process.env['KEEL_SKIP_BROWSER'] === '1') {
        // No browser here, by the operator's choice: the page's structure is all we can check.
        expect(html).toMatch(/<svg id="equity-chart"[^]*<path class="series" d="M[\d.,L]+"/);
        expect(html).toMatch(/<svg id="drawdown-chart"[^]*<path class="series" d="M[\d.,L]+Z"/);
        return;
      }
      throw new Error(`no Chromium at ${CHROMIUM}: install it (Debian: apt-get install -y chromium) or set KEEL_CHROMIUM, or set KEEL_SKIP_BROWSER=1 to skip the browser check`);
    }

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1, offline: true });
      const page = await context.newPage();
      const failed: string[] = [];
      page.on('requestfailed', (r) => failed.push(r.url()));
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
      expect(failed).toEqual([]);
      expect(await page.title()).toMatch(/keel backtest/);

      const equity = decodePng(await page.locator('#equity-chart').screenshot({ type: 'png' }));
      const drawdown = decodePng(await page.locator('#drawdown-chart').screenshot({ type: 'png' }));
      // 960 × 260 CSS px at scale 1 (a fractional page offset may add a row).
      expect(equity.width).toBe(960);
      expect(Math.abs(equity.height - 260)).toBeLessThanOrEqual(1);
      // The equity line: a 2.5 px stroke across ~880 px of plot is thousands of pixels of its colour.
      const blue = hex(CHART_COLORS.equity);
      const red = hex(CHART_COLORS.drawdown);
      expect(countNear(equity, blue, 40)).toBeGreaterThan(1500);
      expect(countNear(drawdown, blue, 40)).toBe(0);
      // The drawdown area: its stroke in the full colour, its fill as the colour at 35 % on white.
      const fill = red.map((c) => Math.round(255 - 0.35 * (255 - c)));
      expect(countNear(drawdown, red, 40)).toBeGreaterThan(800);
      expect(countNear(drawdown, fill, 20)).toBeGreaterThan(500);
      expect(countNear(equity, red, 40)).toBe(0);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
