/**
 * Wires the pure market-feed machine to the venue: the WebSocket actor and the REST polling
 * actor from src/venue/feed-actors.ts.
 */
import { marketFeedMachine } from '../machines/market-feed.machine.ts';
import { createMarketPollActor, createMarketStreamActor } from '../src/venue/index.ts';
import type { VenuePort } from '../src/venue/port.ts';

export function createMarketFeedMachine(venue: VenuePort, now: () => number) {
  return marketFeedMachine.provide({
    actors: {
      marketStream: createMarketStreamActor({ venue, now }),
      marketPoll: createMarketPollActor({ venue, now }),
    },
  });
}
