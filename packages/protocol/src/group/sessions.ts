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
