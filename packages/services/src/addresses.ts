/**
 * The re-randomizable addresses live in the shared contract (`@umbra/protocol/services`, pure,
 * used by clients too); the servers' native fast path is ristretto-native.ts.
 */
export {
  ADDRESS_LENGTH,
  POINT_LENGTH,
  SCALAR_LENGTH,
  addressKid,
  deriveAddress,
  encodeAddress,
  generateAddressKey,
  generateSeed,
  isValidPoint,
  parseAddress,
  randomScalar,
  rerandomizeAddress,
  resolveAddress,
  type AddressClass,
  type AddressKey,
  type AddressParts,
  type ParsedAddress,
  type RerandomizeResult,
} from '@umbra/protocol/services';
