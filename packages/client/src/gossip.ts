/**
 * Directory checkpoint gossip riding in conversations (docs/DIRECTORY.md, "Gossip"): the
 * registered sources (DirectoryClients) are asked for bytes with each outgoing message and told
 * what peers sent. A source that throws is ignored: gossip never breaks a conversation.
 */
import { MAX_GOSSIP_BYTES, type GossipSource } from './client-types.ts';

export class GossipSources {
  private readonly sources = new Set<GossipSource>();

  add(source: GossipSource): void {
    this.sources.add(source);
  }

  remove(source: GossipSource): void {
    this.sources.delete(source);
  }

  get size(): number {
    return this.sources.size;
  }

  /** Each source's bytes for this conversation (those it has and that fit a frame), with a callback confirming they went out. */
  *outgoing(conversationId: string): Generator<{ bytes: Uint8Array; sent(): void }> {
    for (const source of this.sources) {
      let bytes: Uint8Array | null;
      try {
        bytes = source.outgoing(conversationId);
      } catch {
        continue;
      }
      if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_GOSSIP_BYTES) continue;
      const confirmed = bytes;
      yield {
        bytes: confirmed,
        sent: () => {
          try {
            source.sent(conversationId, confirmed);
          } catch {
            // the source's own bookkeeping; it may offer the same gossip again
          }
        },
      };
    }
  }

  /** A peer's gossip frames, after their envelope is stored. */
  incoming(conversationId: string, gossip: readonly Uint8Array[]): void {
    for (const g of gossip) {
      if (g.length > MAX_GOSSIP_BYTES) continue;
      for (const source of this.sources) {
        try {
          source.incoming(conversationId, g);
        } catch {
          // unknown or malformed gossip is ignored
        }
      }
    }
  }
}
