/** Every bound of the reliability machine (docs/PROTOCOL.md §8 "Reliability"). */
import { HINT_WINDOW } from '../hints.ts';

export const MESSAGE_ID_BYTES = 16;
/** Causal history carried in each frame (the wire allows 8). */
export const CAUSAL_HISTORY_IDS = 8;
/** Missing ids tracked per conversation; the oldest are forgotten beyond this. */
export const MAX_MISSING_IDS = 256;
/** Retransmission requests per missing id before giving up. */
export const MAX_RETRANSMIT_REQUESTS = 20;
/** Ids answered per retransmission request, and asked for per request. */
export const MAX_RETRANSMIT_IDS = 64;
/** Ids per ack frame (the wire allows 256). */
export const ACK_IDS_PER_FRAME = 256;
/** Ids waiting to be acknowledged per conversation; beyond this the oldest wait for the peer's retry. */
export const MAX_PENDING_ACKS = 4 * ACK_IDS_PER_FRAME;
/** In-flight window: a few hint slots stay free for acks and requests (a same-bytes retry needs its slot within HINT_WINDOW). */
export const MAX_IN_FLIGHT = HINT_WINDOW - 4;
