/** Public surface of keel's indicators: streaming classes and batch helpers, TA-Lib conventions. */
export { type HlcBar, type StreamingIndicator, IndicatorConfigError, runSeries } from './indicator.ts';
export { Sma, smaSeries } from './sma.ts';
export { Ema, emaSeries } from './ema.ts';
export { type MacdValue, Macd, macdSeries } from './macd.ts';
export { Rsi, rsiSeries } from './rsi.ts';
export { Atr, atrSeries, trueRange } from './atr.ts';
export { type BollingerValue, Bollinger, bollingerSeries } from './bollinger.ts';
export { Adx, adxSeries } from './adx.ts';
