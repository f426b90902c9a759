// The newest position of the feed. GET /events reads forwards only, and past the end its
// next_after is the `after` asked (a reader never goes back), so the newest position is found by
// probes of one event each: galloping forwards from the last one found (positions only grow),
// then halving the gap. Each probe is one row of the position index; a ledger that grew by d
// events since the last search costs about 2·log2(d) probes, and never more than PROBES_MAX.
import { api } from "./api.js";

const GALLOP_FIRST = 64;
const PROBES_MAX = 128;

let known = 0; // at or below the newest position: the newest found last time

export async function newestPosition() {
  let low = known; // at or below the newest
  let high = null; // at or above the newest, once a probe found nothing after it
  let step = GALLOP_FIRST;
  for (let probes = 0; probes < PROBES_MAX; probes++) {
    if (high !== null && low >= high) {
      known = low;
      return low;
    }
    let after = low + Math.floor((high - low) / 2);
    if (high === null) {
      after = Math.min(low + step, Number.MAX_SAFE_INTEGER);
      step *= 2;
    }
    let page;
    try {
      page = await api.events({ after, limit: 1 });
    } catch (error) {
      // Below what retention kept: the newest is at least the position before the oldest kept.
      const oldest = error.problem?.oldest_position;
      if (error.code !== "events_pruned" || !Number.isInteger(oldest)) throw error;
      low = Math.max(low, oldest - 1);
      continue;
    }
    if (page.items.length > 0) low = page.items[0].position;
    // An empty page's next_after is the newest position the read saw, or `after` if that is more.
    else if (page.next_after > after) low = page.next_after;
    else high = after;
    if (high !== null && low > high) high = null; // written to since the probe above: gallop again
  }
  throw new Error(`The newest event position was not found within ${PROBES_MAX} reads of the feed.`);
}
