/** Public surface of the backtester: run it, read its report, render the report. */
export { BACKTEST_ACCOUNT, BacktestError, runBacktest, type BacktestOptions, type BacktestResult, type BacktestStats } from './backtester.ts';
export { CandleMarket, type CandleMarketOptions } from './candle-market.ts';
export { EngineVenue, EXPIRED_ERROR, type EngineVenueOptions, type FundingPayment, type OrderUpdate } from './engine-venue.ts';
export {
  CHART_COLORS,
  HOUR_MS,
  PERIODS_PER_YEAR_HOURLY,
  buildReport,
  downsample,
  drawdownSeries,
  maxDrawdown,
  periodReturns,
  profitFactor,
  reportToHtml,
  reportToJson,
  reportToTable,
  sharpeRatio,
  sortinoRatio,
  type BacktestReport,
  type MarketBreakdown,
  type ReportInput,
  type ReportTrade,
} from './report.ts';
