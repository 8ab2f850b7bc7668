/**
 * Conversations from random keys with no peer behind them: they only occupy an engine's hint
 * table and memory (the lazy-index tests, and the bench's receiver with N conversations).
 */
import type { CryptoProvider, PrivateConversation } from '../src/index.ts';
import { newConversation } from '../src/private-v1.ts';
import { initInitiator, initResponder } from '../src/ratchet.ts';

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
  return newConversation({
    keys,
    initiator,
    identity: crypto.ed25519Generate(),
    peerIdentity: crypto.randomBytes(32),
    invitationId: crypto.randomBytes(16),
    viaDefaultInbox: false,
    ratchet: initiator ? initInitiator(crypto, sk, spk.publicKey, keys.headerKeyA, keys.nextHeaderKeyB) : initResponder(sk, spk, keys.headerKeyA, keys.nextHeaderKeyB),
    peerEndpoints: [],
    ownEndpoints: [],
    peerPresentation: { name: `synthetic ${i}` },
    nowMs,
  });
}
