/** The core's EventEmitter keeps the node:events behaviour the client and directory rely on. */
import assert from 'node:assert/strict';
import { EventEmitter as NodeEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { EventEmitter } from '../src/event-emitter.ts';

/** Runs the same script on both emitters and returns what each listener saw, in order. */
type Listener = (data: unknown) => void;
interface Emitter {
  on(event: string, fn: Listener): unknown;
  once(event: string, fn: Listener): unknown;
  off(event: string, fn: Listener): unknown;
  emit(event: string, data: unknown): boolean;
  listenerCount(event: string): number;
}

function script(e: Emitter): string[] {
  const seen: string[] = [];
  const a = (d: unknown) => seen.push(`a:${d}`);
  const b = (d: unknown) => {
    seen.push(`b:${d}`);
    e.off('x', c); // removed during an emit: still runs for this one
  };
  const c = (d: unknown) => seen.push(`c:${d}`);
  e.on('x', a);
  e.on('x', b);
  e.on('x', c);
  e.once('x', (d: unknown) => seen.push(`once:${d}`));
  seen.push(`count:${e.listenerCount('x')}`);
  seen.push(`emit1:${e.emit('x', 1)}`);
  seen.push(`emit2:${e.emit('x', 2)}`);
  e.on('x', a); // the same function twice: off removes the later registration
  e.off('x', a);
  seen.push(`count:${e.listenerCount('x')}`);
  e.emit('x', 3);
  seen.push(`none:${e.emit('y', 4)}`);
  return seen;
}

describe('EventEmitter', () => {
  it('behaves like node:events for on, once, off (also during an emit) and listenerCount', () => {
    const ours = script(new EventEmitter() as Emitter);
    assert.deepEqual(ours, script(new NodeEmitter()));
    assert.deepEqual(ours.slice(0, 6), ['count:4', 'a:1', 'b:1', 'c:1', 'once:1', 'emit1:true']);
  });

  it("propagates a listener's exception", () => {
    const e = new EventEmitter();
    e.on('x', () => {
      throw new Error('listener failed');
    });
    assert.throws(() => e.emit('x', 1), /listener failed/);
  });
});
