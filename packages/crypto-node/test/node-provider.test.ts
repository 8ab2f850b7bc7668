import { nobleProvider } from '@umbra/protocol';
import { nodeProvider } from '../src/index.ts';
import { cryptoConformanceSuite, crossProviderSuite } from '../../protocol/test/crypto-conformance.ts';

cryptoConformanceSuite(nodeProvider);
crossProviderSuite(nodeProvider, nobleProvider);
