/** Every Delivery adapter against the one contract suite (delivery-contract.ts). */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startHub, type Hub } from '@umbra/services';
import { MailboxDelivery, MemoryDelivery, MemoryNetwork, MemoryStateStore, ServicesDelivery } from '../src/node.ts';
import { startWakuBootstrapNode, WakuDelivery, type WakuBootstrapNode } from '../src/waku/index.ts';
import { deliveryContractSuite, type DeliveryPair } from './delivery-contract.ts';
import { tempDir } from './helpers.ts';

const freshRoute = (): string => `route-${randomBytes(8).toString('hex')}`;

deliveryContractSuite({
  name: 'memory',
  async pair(): Promise<DeliveryPair> {
    const network = new MemoryNetwork();
    const sender = new MemoryDelivery(network);
    const route = freshRoute();
    return { sender, receiver: new MemoryDelivery(network), route, send: (b) => sender.publish(route, b), witness: async () => new MemoryDelivery(network) };
  },
});

{
  let dir: { dir: string; cleanup: () => void };
  deliveryContractSuite({
    name: 'mailbox (a shared SQLite file)',
    async setUp() {
      dir = tempDir('umbra-contract-mailbox-');
      return async () => dir.cleanup();
    },
    async pair(): Promise<DeliveryPair> {
      const path = join(dir.dir, `${freshRoute()}.db`);
      const sender = new MailboxDelivery(path, 5);
      const route = freshRoute();
      return { sender, receiver: new MailboxDelivery(path, 5), route, send: (b) => sender.publish(route, b), witness: async () => new MailboxDelivery(path, 5) };
    },
  });
}

{
  let hub: Hub;
  let dir: { dir: string; cleanup: () => void };
  const open = (): Promise<ServicesDelivery> => ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, stateStore: new MemoryStateStore() });
  deliveryContractSuite({
    name: 'services (issuer, SSA, two RSAs on loopback)',
    timeoutMs: 30_000,
    async setUp() {
      dir = tempDir('umbra-contract-hub-');
      hub = await startHub({ dataDir: dir.dir, port: 0, rsaMode: 'in-process', ssaRetry: { baseMs: 50, maxMs: 500 } });
      return async () => {
        await hub.close();
        dir.cleanup();
      };
    },
    async pair(): Promise<DeliveryPair> {
      const [sender, receiver] = await Promise.all([open(), open()]);
      const [endpoint] = await receiver.endpointsForNewRelationship();
      // One receiver per account: the services push every inbox's messages to the account's one delivery, so no witness.
      return { sender, receiver, route: receiver.servicesRoute, send: (b) => sender.publishEndpoint(endpoint!, b) };
    },
  });
}

{
  let node: WakuBootstrapNode;
  const deliveries: WakuDelivery[] = [];
  const open = async (): Promise<WakuDelivery> => {
    const d = await WakuDelivery.create({ bootstrap: node.multiaddrs });
    deliveries.push(d);
    await d.ready();
    return d;
  };
  deliveryContractSuite({
    name: 'Waku (relay through a bootstrap node with a store)',
    timeoutMs: 30_000,
    async setUp() {
      node = await startWakuBootstrapNode({});
      return async () => {
        await Promise.all(deliveries.map((d) => d.close()));
        await node.close();
      };
    },
    async pair(): Promise<DeliveryPair> {
      const [sender, receiver] = await Promise.all([open(), open()]);
      const route = freshRoute();
      return { sender, receiver, route, send: (b) => sender.publish(route, b), witness: open };
    },
  });
}
