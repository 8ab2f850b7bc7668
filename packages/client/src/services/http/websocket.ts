/**
 * The WebSocket the clients use: the platform's (browsers, Deno, Node ≥ 22) or one injected by
 * the platform entry (`@umbra/client/node` passes the `ws` package, Node 20 has no global one).
 * Only the standard (WHATWG) surface is used, which `ws` implements too.
 */

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** readyState of an open socket (the same in every implementation). */
export const WEBSOCKET_OPEN = 1;

/** The given constructor, else the platform's; a clear error where there is neither. */
export function webSocketConstructor(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const ctor = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (ctor === undefined) throw new Error('no WebSocket on this platform: pass one (the Node entry @umbra/client/node passes the ws package)');
  return ctor;
}

/** A text frame's contents, whatever the implementation hands over (string, Buffer, ArrayBuffer). */
export function frameText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return null;
}
