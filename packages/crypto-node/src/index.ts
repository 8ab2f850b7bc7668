export { nodeProvider } from './node-provider.ts';
