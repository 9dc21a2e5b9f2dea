/**
 * Public surface of the market replay: recorded candles in, deterministic market blocks and
 * Hyperliquid-shaped candles out. See market-replay.ts for the invariants.
 */
export { type Bar, type CandleIssue, type ParseResult, type VolumeUnit, MAX_GAP_MINUTES, MINUTE_MS, VOLUME_UNITS, convertVolume, formatIssue, joinAndFill, leanFileDate, parseCandleFile, parseLeanMinute, parsePlainCsv } from './candle-format.ts';
export { type CoinSeries, type LoadResult, type MarketManifestEntry, CandleDataError, MANIFEST_NAME, bundledDataDir, coinFromFileName, loadBundledSeries, loadCandleSeries, parseManifest, tryLoadCandleSeries, universeOf } from './candle-loader.ts';
export { type CandleInterval, CANDLE_INTERVALS, bucketEnd, bucketStart, isCandleInterval } from './candle-intervals.ts';
export { type CandleWire, type MarketReplayOptions, MAX_BOOK_LEVELS, MAX_CANDLES, MarketReplay, tickUnits, unitsToWire } from './market-replay.ts';
