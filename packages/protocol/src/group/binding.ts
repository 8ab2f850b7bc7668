/**
 * GroupBinding: ties a member's per-group secp256k1 key to one of their Ed25519 relationship
 * identities, signed by both keys:
 *
 *   identity_signature = Ed25519(identity, "umbra/v1/group-binding" ‖ utf8(chat_id) ‖ group_key)
 *   group_signature    = secp256k1(group key, keccak256("umbra/v1/group-binding-key" ‖ utf8(chat_id) ‖ identity_key))
 *
 * Fixed-length keys come last, so each signed string parses one way. The first signature says
 * "this identity speaks for that group key in this group"; the second stops anyone (say, a
 * malicious introducer) from binding somebody else's group key to an identity they control.
 * The binding travels inside pairwise sessions and inside introductions.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { CryptoProvider, KeyPair } from '../crypto/provider.ts';
import { concat, constantTimeEqual, utf8 } from '../bytes.ts';
import { GroupBindingSchema, type GroupBinding } from '../wire/gen/umbra/v1/group_v1_pb.ts';
import { GROUP_KEY_BYTES, SIGNATURE_BYTES, keccak256, memberIdOf, recoverSigner, signDigest, type GroupKeyPair } from './keys.ts';
import { LABEL_GROUP_BINDING, LABEL_GROUP_BINDING_KEY } from './labels.ts';
import { MAX_CHAT_ID_CHARS } from './limits.ts';

export type { GroupBinding };

export const ED25519_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
/** Generous bound for one encoded binding. */
export const MAX_GROUP_BINDING_BYTES = MAX_CHAT_ID_CHARS * 4 + 512;

export function bindingIdentityMessage(chatId: string, groupKey: Uint8Array): Uint8Array {
  return concat(LABEL_GROUP_BINDING, utf8(chatId), groupKey);
}

export function bindingGroupKeyDigest(chatId: string, identityKey: Uint8Array): Uint8Array {
  return keccak256(concat(LABEL_GROUP_BINDING_KEY, utf8(chatId), identityKey));
}

/** Sign a binding with both keys (`identity` is an Ed25519 relationship identity). */
export function createGroupBinding(crypto: CryptoProvider, chatId: string, groupKey: GroupKeyPair, identity: KeyPair): GroupBinding {
  return create(GroupBindingSchema, {
    chatId,
    groupKey: groupKey.publicKey,
    identityKey: identity.publicKey,
    identitySignature: crypto.ed25519Sign(identity.secretKey, bindingIdentityMessage(chatId, groupKey.publicKey)),
    groupSignature: signDigest(groupKey.secretKey, bindingGroupKeyDigest(chatId, identity.publicKey)),
  });
}

export function encodeGroupBinding(binding: GroupBinding): Uint8Array {
  return toBinary(GroupBindingSchema, binding);
}

/** Decode with exact field sizes; null on anything else. Never throws. Does not verify. */
export function decodeGroupBinding(bytes: Uint8Array): GroupBinding | null {
  if (bytes.length > MAX_GROUP_BINDING_BYTES) return null;
  let b;
  try {
    b = fromBinary(GroupBindingSchema, bytes, { readUnknownFields: false });
  } catch {
    return null;
  }
  return hasBindingShape(b) ? b : null;
}

export function hasBindingShape(b: GroupBinding): boolean {
  return (
    b.chatId.length > 0 &&
    b.chatId.length <= MAX_CHAT_ID_CHARS &&
    b.groupKey.length === GROUP_KEY_BYTES &&
    b.groupKey[0] === 0x04 &&
    b.identityKey.length === ED25519_KEY_BYTES &&
    b.identitySignature.length === ED25519_SIGNATURE_BYTES &&
    b.groupSignature.length === SIGNATURE_BYTES
  );
}

export type BindingError = 'binding-malformed' | 'binding-wrong-chat' | 'binding-bad-identity-signature' | 'binding-bad-group-signature';

export type BindingCheck =
  | { readonly ok: true; readonly memberId: string; readonly identityKey: Uint8Array }
  | { readonly ok: false; readonly code: BindingError };

/** Verify both signatures for `chatId`. Never throws. */
export function verifyGroupBinding(crypto: CryptoProvider, binding: GroupBinding, chatId: string): BindingCheck {
  if (!hasBindingShape(binding)) return { ok: false, code: 'binding-malformed' };
  if (binding.chatId !== chatId) return { ok: false, code: 'binding-wrong-chat' };
  if (!crypto.ed25519Verify(binding.identityKey, bindingIdentityMessage(chatId, binding.groupKey), binding.identitySignature)) {
    return { ok: false, code: 'binding-bad-identity-signature' };
  }
  const signer = recoverSigner(binding.groupSignature, bindingGroupKeyDigest(chatId, binding.identityKey));
  if (signer === null || !constantTimeEqual(signer, binding.groupKey)) return { ok: false, code: 'binding-bad-group-signature' };
  return { ok: true, memberId: memberIdOf(binding.groupKey), identityKey: binding.identityKey };
}
