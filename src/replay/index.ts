/** Public surface of `keel replay`: the replayer, its report, and the payload parsers it uses. */
export { type Divergence, type DivergenceKind, type ReplayOptions, type ReplayProblem, type ReplayReport, type ReplayedDecision, REPLAYED_DECISIONS, bundledInstrument, replayBlackbox } from './replayer.ts';
export { type JsonDifference, firstDifference } from './json-diff.ts';
export { type HistoryInput, type Parsed, type RiskInput, parseCandle, parseHistory, parseRiskInput, parseSignal } from './payloads.ts';
