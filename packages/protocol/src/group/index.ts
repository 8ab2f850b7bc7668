/**
 * group/v1: private group chat byte-compatible with status-go's signed membership events.
 * Pure and sans-I/O: the client stores events, sends pairwise, and calls these. docs/GROUPS.md.
 */
export * from './keys.ts';
export * from './labels.ts';
export * from './limits.ts';
export * from './clock.ts';
export * from './chat-id.ts';
export * from './event.ts';
export * from './fold.ts';
export * from './builders.ts';
export * from './message.ts';
export * from './binding.ts';
export * from './invite.ts';
export * from './sessions.ts';
export * from './membership.ts';
export {
  MembershipUpdateEventSchema,
  MembershipUpdateMessageSchema,
  GroupChatMessageSchema,
  GroupEmojiReactionSchema,
  GroupBindingSchema,
  GroupInviteSchema,
  GroupIntroductionSchema,
  GroupEndpointsSchema,
  type MembershipUpdateEvent,
  type MembershipUpdateMessage,
  type GroupChatMessage,
  type GroupEmojiReaction,
} from '../wire/gen/umbra/v1/group_v1_pb.ts';
