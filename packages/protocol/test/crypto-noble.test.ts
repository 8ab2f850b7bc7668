import { nobleProvider } from '../src/crypto/noble.ts';
import { cryptoConformanceSuite } from './crypto-conformance.ts';

cryptoConformanceSuite(nobleProvider);
