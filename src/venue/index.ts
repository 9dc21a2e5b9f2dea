/**
 * The venue layer's public surface: the port, the Hyperliquid adapter, and the market feed's
 * effect actors with their event vocabulary.
 */
export { VenueError } from './port.ts';
export type { ActOptions, MarketHandlers, Subscription, UserHandlers, VenuePort } from './port.ts';
export { createHyperliquidVenue } from './hyperliquid-venue.ts';
export type { HyperliquidVenue, HyperliquidVenueOptions, VenueLogger } from './hyperliquid-venue.ts';
export { createMarketPollActor, createMarketStreamActor } from './feed-actors.ts';
export type { FeedActorDeps } from './feed-actors.ts';
export { FEED_INPUT, intervalMs, seriesKey } from './feed-port.ts';
export type { FeedInputEvent, FeedSource, MarketPollInput, MarketStreamInput } from './feed-port.ts';
