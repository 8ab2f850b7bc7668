/**
 * The RSA's storage re-encryption: stored = enc (32 B) ‖ ciphertext, sealed to the inbox's
 * dh_key by RFC 9180 HPKE (the protocol's one construction, `hpkeSealBase`, run on the
 * node:crypto provider) with info "umbra/v1/rsa-store" and aad = mid. The bytes a recipient
 * fetches therefore differ from the bytes the SSA delivered, and stored messages are readable
 * only by the inbox owner (the SDK's RSA client opens them). The tests check it against @hpke/core
 * both ways.
 */
import { nodeProvider } from '@umbra/crypto-node';
import { hpkeSealBase } from '@umbra/protocol';
import { LABEL_RSA_STORE } from '@umbra/protocol/services';
import { concat } from './bytes.ts';

export { LABEL_RSA_STORE } from '@umbra/protocol/services';

const ENC_BYTES = 32;

/** 32 bytes that give a non-zero X25519 result (low-order points would make every seal fail). */
export async function isValidDhKey(publicKey: Uint8Array): Promise<boolean> {
  return publicKey.length === ENC_BYTES && nodeProvider.x25519(nodeProvider.x25519Generate().secretKey, publicKey) !== null;
}

/** Seal (synchronous core); throws a RangeError for an unusable recipient key. */
export function sealForInboxSync(dhKey: Uint8Array, mid: Uint8Array, payload: Uint8Array): Uint8Array {
  const { enc, ciphertext } = hpkeSealBase(nodeProvider, dhKey, LABEL_RSA_STORE, mid, payload);
  return concat(enc, ciphertext);
}

export async function sealForInbox(dhKey: Uint8Array, mid: Uint8Array, payload: Uint8Array): Promise<Uint8Array> {
  return sealForInboxSync(dhKey, mid, payload);
}
