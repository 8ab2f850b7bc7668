/** Signature contexts of group/v1 (docs/GROUPS.md lists the same constants). */
import { utf8 } from '../bytes.ts';

/** Ed25519(identity) over label ‖ utf8(chat_id) ‖ group_key(65). */
export const LABEL_GROUP_BINDING = utf8('umbra/v1/group-binding');
/** secp256k1(group key) over keccak256(label ‖ utf8(chat_id) ‖ identity_key(32)). */
export const LABEL_GROUP_BINDING_KEY = utf8('umbra/v1/group-binding-key');
