/**
 * Size limits checked before anything is parsed or verified. status-go has none of these at
 * this layer (its transport caps messages at 1 MiB); ours keep every decoder bounded and every
 * group/v1 structure inside one private/v1 frame (64 KiB bucket), except GroupInvite, which the
 * client may split (introductions are independent).
 */
export const MAX_CHAT_ID_CHARS = 256;
/** Encoded MembershipUpdateEvent (without its signature). */
export const MAX_EVENT_BYTES = 20 * 1024;
export const MAX_GROUP_IMAGE_BYTES = 16 * 1024;
export const MAX_GROUP_NAME_CHARS = 128;
export const MAX_GROUP_COLOR_CHARS = 32;
export const MAX_MEMBERS_PER_EVENT = 64;
/** Events in one MembershipUpdateMessage or GroupInvite. */
export const MAX_EVENTS_PER_UPDATE = 1024;
/**
 * Events a stored group history may hold (a merge stores no more; a fold ignores the latest
 * beyond it). The fold keeps one ancestry bitset per event: at most 4096² bits = 2 MiB. A
 * full-history update (≤ 60 KiB) carries well under a thousand events anyway.
 */
export const MAX_GROUP_EVENTS = 4096;
/** Parent ids (DAG heads) one event may name. */
export const MAX_PARENTS = 64;
/** Stored events whose ancestry is still incomplete (held until their parents arrive). */
export const MAX_PENDING_EVENTS = 64;
/** Fold passes: each pass may void events that a removal it found does not causally follow. */
export const MAX_FOLD_PASSES = 8;
export const MAX_MEMBERSHIP_UPDATE_BYTES = 60 * 1024;
export const MAX_GROUP_INVITE_BYTES = 256 * 1024;
export const MAX_INTRODUCTIONS = 64;
export const MAX_INVITATION_CHARS = 24 * 1024;
export const MAX_INTRO_ENDPOINTS = 16;
/** status-go: chat text is limited to 4096 characters. */
export const MAX_GROUP_TEXT_CHARS = 4096;
export const MAX_GROUP_CHAT_MESSAGE_BYTES = 32 * 1024;
export const MAX_MESSAGE_ID_CHARS = 2 + 64;
