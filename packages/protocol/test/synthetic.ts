/**
 * Conversations from random keys with no peer behind them: they only occupy an engine's hint
 * table and memory (the lazy-index tests, and the bench's receiver with N conversations).
 */
import type { CryptoProvider, PrivateConversation } from '../src/index.ts';
import { newConversation } from '../src/private-v1.ts';
import { initInitiator, initResponder } from '../src/ratchet.ts';
import { refusalHintBytes, refusalKey } from '../src/handshake-refusal.ts';

export function syntheticConversation(crypto: CryptoProvider, i: number, nowMs: number): PrivateConversation {
  const sk = crypto.randomBytes(32);
  const keys = {
    sharedSecret: sk,
    headerKeyA: crypto.randomBytes(32),
    nextHeaderKeyB: crypto.randomBytes(32),
    conversationId: crypto.randomBytes(16),
    hintKeyInitiator: crypto.randomBytes(32),
    hintKeyResponder: crypto.randomBytes(32),
    associatedData: crypto.randomBytes(64),
  };
  const spk = crypto.x25519Generate();
  const initiator = i % 2 === 0;
  const identity = crypto.ed25519Generate();
  const invitationId = crypto.randomBytes(16);
  return newConversation({
    keys,
    initiator,
    identity,
    peerIdentity: crypto.randomBytes(32),
    invitationId,
    viaDefaultInbox: false,
    ratchet: initiator ? initInitiator(crypto, sk, spk.publicKey, keys.headerKeyA, keys.nextHeaderKeyB) : initResponder(sk, spk, keys.headerKeyA, keys.nextHeaderKeyB),
    peerEndpoints: [],
    ownEndpoints: [],
    peerPresentation: { name: `synthetic ${i}` },
    nowMs,
    // As acceptInvitation keeps it for the initiator (a first contact that awaits its reply).
    refusalHint: initiator ? refusalHintBytes(crypto, refusalKey(crypto, identity.secretKey, invitationId)) : undefined,
  });
}
