/**
 * Narrow ports onto one conversation's relationship, for code outside the client (the
 * directory's link proofs): a signer that never hands out the secret key and stops once the
 * client is closed, and the relationship's public facts.
 */
import { toHex, type CryptoProvider } from '@umbra/protocol';
import type { RelationshipInfo, RelationshipSigner } from './client-types.ts';
import type { ConversationState } from './conversation-state.ts';
import { ClientError } from './errors.ts';

export function relationshipSigner(crypto: CryptoProvider, state: ConversationState, conversationId: string, assertOpen: () => void): RelationshipSigner {
  state.requireMeta(conversationId);
  const identity = state.conversation(conversationId).identity;
  return {
    publicKey: new Uint8Array(identity.publicKey),
    sign: (message) => {
      assertOpen();
      if (!(message instanceof Uint8Array)) throw new ClientError('invalid-argument', 'sign takes bytes');
      return crypto.ed25519Sign(identity.secretKey, message);
    },
  };
}

export function relationshipInfo(state: ConversationState, conversationId: string): RelationshipInfo {
  state.requireMeta(conversationId);
  const c = state.conversation(conversationId);
  return { invitationId: toHex(c.invitationId), peerIdentityKey: new Uint8Array(c.peerIdentity) };
}
