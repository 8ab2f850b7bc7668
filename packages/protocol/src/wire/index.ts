/**
 * The wire contract other packages build frames and endpoints with: the generated message types
 * and schemas of envelope.proto, invitation.proto and private_v1.proto, protobuf's create and
 * toBinary, and the size limits. The decoders and encoders of codec.ts (limits, canonical
 * re-encoding) stay inside the protocol: the Engine is the one place untrusted bytes are parsed.
 */
export * from './gen/umbra/v1/envelope_pb.ts';
export * from './gen/umbra/v1/invitation_pb.ts';
export * from './gen/umbra/v1/private_v1_pb.ts';
export {
  create,
  toBinary,
  MAX_ENVELOPE_BYTES,
  MAX_INVITATION_BYTES,
  MAX_AVATAR_BYTES,
  MAX_NAME_CHARS,
  MAX_ENDPOINTS,
  MAX_HINT_CHARS,
  MAX_CAUSAL_HISTORY,
  MAX_ACK_IDS,
  MESSAGE_ID_BYTES,
} from './codec.ts';
