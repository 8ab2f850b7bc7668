/**
 * Talking to a running agent over its socket (<data>/agent.sock, mode 0600 in the 0700 data
 * directory): one JSON object per line each way. Light on purpose (node:net only): a command the
 * agent answers never loads the SDK, so it starts in a few tens of milliseconds.
 *
 *   → {"id":1,"method":"call","command":"list","params":{},"transport":null}
 *   ← {"id":1,"ok":true,"result":{"json":{…},"text":"…"}}   or   {"id":1,"ok":false,"error":{"code":…}}
 *   → {"id":2,"method":"subscribe"}   ← {"id":2,"event":{…}} for every event until the socket closes
 *   → {"id":3,"method":"status"} / {"id":4,"method":"stop"}
 */
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { CliError } from './errors.ts';
import type { TransportConfig } from './config.ts';

export const socketPath = (dataDir: string): string => join(dataDir, 'agent.sock');

export interface AgentStatus {
  pid: number;
  name: string;
  accountId: string;
  dataDir: string;
  transport: TransportConfig;
  startedAt: string;
  /** 'agent' (umbra agent start) or 'chat' (an open umbra chat serving other commands). */
  mode: 'agent' | 'chat';
}

export interface ChatEvent {
  /** receipt: one of your messages in `chatId` was delivered (shown only where it was sent). */
  kind: 'message' | 'receipt' | 'notice';
  /** The conversation or group it belongs to (messages). */
  chatId?: string;
  handle?: string;
  text: string;
}

type Reply = { id: number; ok?: boolean; result?: unknown; error?: unknown; event?: ChatEvent };

export class AgentConnection {
  private nextId = 1;
  private buffer = '';
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly streams = new Map<number, (e: ChatEvent) => void>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.trim() !== '') this.onLine(line);
      }
    });
    const gone = () => {
      this.closed = true;
      for (const w of this.waiting.values()) w.reject(new CliError('agent', 'the agent closed the connection before answering', { hint: '"umbra agent status"; its log is agent.log in the data directory' }));
      this.waiting.clear();
    };
    socket.on('close', gone);
    socket.on('error', () => undefined); // 'close' follows
  }

  /** Connected to the agent of this data directory, or null when none is running there. */
  static async connect(dataDir: string): Promise<AgentConnection | null> {
    const path = socketPath(dataDir);
    return new Promise((resolve) => {
      const socket = connect(path);
      const fail = () => {
        socket.destroy();
        resolve(null);
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        resolve(new AgentConnection(socket));
      });
    });
  }

  private onLine(line: string): void {
    let msg: Reply;
    try {
      msg = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    if (msg.event !== undefined) {
      this.streams.get(msg.id)?.(msg.event);
      return;
    }
    const w = this.waiting.get(msg.id);
    if (w === undefined) return;
    this.waiting.delete(msg.id);
    if (msg.ok === true) w.resolve(msg.result);
    else w.reject(CliError.fromJson({ error: msg.error }));
  }

  private request(body: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new CliError('agent', 'the agent is not running any more'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ id, ...body }) + '\n');
    });
  }

  call(command: string, params: unknown, transport: TransportConfig | null): Promise<unknown> {
    return this.request({ method: 'call', command, params, transport });
  }

  status(): Promise<AgentStatus> {
    return this.request({ method: 'status' }) as Promise<AgentStatus>;
  }

  stop(): Promise<unknown> {
    return this.request({ method: 'stop' });
  }

  /** Events (messages, notices) as the agent sees them, until close(). */
  subscribe(onEvent: (e: ChatEvent) => void): void {
    const id = this.nextId++;
    this.streams.set(id, onEvent);
    this.socket.write(JSON.stringify({ id, method: 'subscribe' }) + '\n');
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.socket.once('close', fn);
  }

  close(): void {
    this.closed = true;
    this.socket.end();
    this.socket.destroy();
  }
}
