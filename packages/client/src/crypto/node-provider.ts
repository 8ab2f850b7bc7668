// The node:crypto provider lives in @umbra/crypto-node (the services use it too).
export { nodeProvider } from '@umbra/crypto-node';
