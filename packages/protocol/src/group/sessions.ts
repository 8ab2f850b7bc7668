/**
 * Pairwise sessions in a group: who opens a session to whom, and what each bound session is
 * owed (docs/GROUPS.md §11, "Sessions and introductions"). Pure decisions over the folded member
 * list and what the caller has already done, so every member reaches the same answer and the
 * client only builds and sends the frames.
 *
 * The rule: of two members, the one later in the member list opens the session, from the
 * earlier one's card. So each member relays to every bound peer the cards of the members before
 * that peer, and opens sessions to the members before itself.
 */
import type { GroupChange } from './fold.ts';

/**
 * The members we should open a session to: those before `self` in the member list that
 * `reached` says we cannot reach yet. Empty when `self` is not a member.
 */
export function membersToDial(members: readonly string[], self: string, reached: (member: string) => boolean): string[] {
  const selfIndex = members.indexOf(self);
  if (selfIndex < 0) return [];
  return members.slice(0, selfIndex).filter((m) => m !== self && !reached(m));
}

/** The members whose cards `peer` needs: everyone before `peer` in the list, except `self`. */
export function cardsOwedTo(members: readonly string[], self: string, peer: string): string[] {
  const index = members.indexOf(peer);
  if (index < 0) return [];
  return members.slice(0, index).filter((m) => m !== self);
}

export interface SessionPlanInput {
  readonly members: readonly string[];
  readonly self: string;
  /** Bound sessions: conversation id → member id, in the order the caller keeps them. */
  readonly bindings: Readonly<Record<string, string>>;
  /** Whether the conversation is still held (a session that is gone is skipped). */
  isOpen(conversationId: string): boolean;
  /** Whether our hello (binding + card) already went out on this conversation. */
  helloSent(conversationId: string): boolean;
  /** Whether we hold this member's card. */
  hasCard(member: string): boolean;
  /** Whether this member's card already went out on this conversation. */
  cardSent(conversationId: string, member: string): boolean;
  /** Members we hold deferred messages for (sent when a session to them opens). */
  readonly deferred: readonly string[];
}

/** What one bound session is owed now. */
export interface SessionStep {
  readonly conversationId: string;
  readonly member: string;
  /** Send our hello: it has not gone out on this session. */
  readonly hello: boolean;
  /** Relay these members' cards (held, not yet sent here), in member-list order. */
  readonly introduce: readonly string[];
  /** Deliver the messages deferred for `member` here (the member's first live session). */
  readonly deliverDeferred: boolean;
}

export interface SessionPlan {
  /** One step per live bound session (to a current member other than us), in binding order. */
  readonly steps: readonly SessionStep[];
  /** Members whose deferred messages are dropped: they are no longer in the group. */
  readonly dropDeferred: readonly string[];
}

/**
 * Reconciles our bound sessions with the folded member list: a hello on every live session
 * that has not had one, the cards each peer is owed, deferred messages to members who became
 * reachable, and deferred messages dropped for members who are gone.
 */
export function planSessions(input: SessionPlanInput): SessionPlan {
  const { members, self } = input;
  const current = new Set(members);
  const deferred = new Set(input.deferred);
  const delivered = new Set<string>();
  const steps: SessionStep[] = [];
  for (const [conversationId, member] of Object.entries(input.bindings)) {
    if (member === self || !current.has(member) || !input.isOpen(conversationId)) continue;
    const introduce = cardsOwedTo(members, self, member).filter((m) => input.hasCard(m) && !input.cardSent(conversationId, m));
    const deliverDeferred = deferred.has(member) && !delivered.has(member);
    if (deliverDeferred) delivered.add(member);
    steps.push({ conversationId, member, hello: !input.helloSent(conversationId), introduce, deliverDeferred });
  }
  return { steps, dropDeferred: input.deferred.filter((m) => !current.has(m)) };
}

// ---- binding a session to a member --------------------------------------------------------

export interface SessionBindingInput {
  /** The folded member list. */
  readonly members: readonly string[];
  /** The fold's applied changes, in order. */
  readonly history: readonly GroupChange[];
  /** The member the session is bound to now, if any. */
  readonly current: string | undefined;
  /** The member a binding (or introduction) names for it. */
  readonly next: string;
  /** The binding answers our own invitation on this session. */
  readonly invited: boolean;
}

/**
 * 'unchanged': already bound to `next`; 'bind': bind (or move) the session to `next`;
 * 'redirect': refuse (a binding tried to move a session to another key).
 *
 * A session is bound once. One bound to a current member never moves. One bound to a member who
 * is out of the group (a folded removal or leave) moves to a new key only when (a) it answers
 * our own invitation on that session, or (b) the group folded an addition of the new key later
 * than that removal and not signed by the removed key.
 */
export function decideSessionBinding(input: SessionBindingInput): 'unchanged' | 'bind' | 'redirect' {
  const { current, next, members } = input;
  if (current === next) return 'unchanged';
  if (current === undefined) return 'bind';
  if (members.includes(current)) return 'redirect';
  if (input.invited) return 'bind';
  return mayTakeOver(input.history, members, current, next) ? 'bind' : 'redirect';
}

/** (b) of decideSessionBinding, read from the fold's history. */
function mayTakeOver(history: readonly GroupChange[], members: readonly string[], current: string, next: string): boolean {
  if (!members.includes(next)) return false;
  let removedAt = -1;
  let addedAt = -1;
  let addedBy = '';
  history.forEach((h, i) => {
    if ((h.kind === 'removed' || h.kind === 'left') && h.members.includes(current)) removedAt = i;
    if (h.kind === 'added' && h.members.includes(next)) {
      addedAt = i;
      addedBy = h.author;
    }
  });
  return removedAt >= 0 && addedAt > removedAt && addedBy !== current;
}
