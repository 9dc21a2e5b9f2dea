/** Public surface of keel's strategies: the contract, the registry, the default strategy, indicators. */
export { type Strategy, type StrategyCreateError, type StrategyCreateResult, type StrategyFactory, BUILTIN_STRATEGIES, DEFAULT_STRATEGY, StrategyRegistry, createStrategy } from './strategy.ts';
export {
  type EnhancedMacdConfig,
  type EnhancedMacdEvaluation,
  type EnhancedMacdSnapshot,
  type FilterName,
  ENHANCED_MACD,
  ENHANCED_MACD_DEFAULTS,
  EnhancedMacdConfigSchema,
  EnhancedMacdStrategy,
  enhancedMacdFactory,
} from './enhanced-macd.ts';
export { type AggregatorConfigIssue, type CandleAggregatorOptions, CandleAggregator, intervalMs } from './candle-aggregator.ts';
export * from './indicators/index.ts';
