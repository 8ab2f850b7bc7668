/**
 * The RSA's storage re-encryption: stored = enc (32 B) ‖ ciphertext, sealed to the inbox's
 * dh_key by RFC 9180 HPKE (the protocol's one construction, `hpkeSealBase`, run on the
 * node:crypto provider) with info "umbra/v1/rsa-store" and aad = mid. The bytes a recipient
 * fetches therefore differ from the bytes the SSA delivered, and stored messages are readable
 * only by the inbox owner. The tests check it against @hpke/core both ways.
 */
import { nodeProvider } from '@umbra/crypto-node';
import { hpkeOpenBase, hpkeSealBase } from '@umbra/protocol';
import { LABEL_RSA_STORE } from '@umbra/protocol/services';
import { concat } from './bytes.ts';

export { LABEL_RSA_STORE } from '@umbra/protocol/services';

const ENC_BYTES = 32;
const TAG_BYTES = 16;

export async function generateInboxDhKey(): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> {
  const { publicKey, secretKey } = nodeProvider.x25519Generate();
  return { publicKey, privateKey: secretKey };
}

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

/** Client side: opens a stored message; null if it does not open (wrong key, mid or bytes). */
export async function openStored(dhPrivateKey: Uint8Array, mid: Uint8Array, stored: Uint8Array): Promise<Uint8Array | null> {
  if (stored.length < ENC_BYTES + TAG_BYTES) return null;
  return hpkeOpenBase(nodeProvider, dhPrivateKey, stored.subarray(0, ENC_BYTES), LABEL_RSA_STORE, mid, stored.subarray(ENC_BYTES));
}
