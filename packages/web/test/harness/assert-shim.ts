/**
 * node:assert/strict for the browser, as far as the shared suites use it: strict equality
 * (Object.is), structural deep equality (typed arrays, arrays, plain objects, Map, Set, Date,
 * errors by name and message), throws/rejects with a class, RegExp, object or predicate.
 * Bundled in place of node:assert by harness/chromium.ts.
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return `Uint8Array(${v.length}) [${Array.from(v.subarray(0, 16)).join(',')}${v.length > 16 ? ',…' : ''}]`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v);
  try {
    const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<${x.length} bytes>` : x));
    return text === undefined ? String(v) : text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch {
    return String(v);
  }
}

function fail(message: string | Error | undefined, fallback: string): never {
  if (message instanceof Error) throw message;
  throw new AssertionError(message ?? fallback);
}

function isDeepEqual(a: unknown, b: unknown, seen = new Map<object, object>()): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (seen.get(a) === b) return true;
  seen.set(a, b);
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof RegExp) return String(a) === String(b);
  if (a instanceof Error && (a.name !== (b as Error).name || a.message !== (b as Error).message)) return false;
  if (a instanceof Map) {
    const m = b as Map<unknown, unknown>;
    if (a.size !== m.size) return false;
    for (const [k, v] of a) if (!m.has(k) || !isDeepEqual(v, m.get(k), seen)) return false;
    return true;
  }
  if (a instanceof Set) {
    const s = b as Set<unknown>;
    if (a.size !== s.size) return false;
    for (const v of a) if (!s.has(v)) return false;
    return true;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!isDeepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], seen)) return false;
  }
  return true;
}

type Expected = (new (...args: never[]) => unknown) | RegExp | Record<string, unknown> | ((e: unknown) => boolean);

function matches(error: unknown, expected: Expected | undefined): boolean {
  if (expected === undefined) return true;
  if (expected instanceof RegExp) return expected.test(error instanceof Error ? `${error.name}: ${error.message}` : String(error)) || expected.test(String((error as Error)?.message));
  if (typeof expected === 'function') {
    // A class (Error or a subclass) is an instanceof check; any other function validates.
    const isErrorClass = expected === Error || expected.prototype instanceof Error;
    if (isErrorClass) return error instanceof (expected as new () => unknown);
    return (expected as (e: unknown) => boolean)(error) === true;
  }
  if (typeof error !== 'object' || error === null) return false;
  for (const [k, v] of Object.entries(expected)) {
    const actual = (error as Record<string, unknown>)[k];
    if (v instanceof RegExp ? !(typeof actual === 'string' && v.test(actual)) : !isDeepEqual(actual, v)) return false;
  }
  return true;
}

function ok(value: unknown, message?: string | Error): asserts value {
  if (!value) fail(message, `expected a truthy value, got ${show(value)}`);
}

function equal<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T {
  if (!Object.is(actual, expected)) fail(message, `expected ${show(expected)}, got ${show(actual)}`);
}

function notEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (Object.is(actual, expected)) fail(message, `expected a value other than ${show(expected)}`);
}

function deepEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T {
  if (!isDeepEqual(actual, expected)) fail(message, `not deep-equal:\n  actual   ${show(actual)}\n  expected ${show(expected)}`);
}

function notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (isDeepEqual(actual, expected)) fail(message, `expected values that are not deep-equal: ${show(actual)}`);
}

function throws(fn: () => unknown, expected?: Expected | string, message?: string | Error): void {
  if (typeof expected === 'string') [message, expected] = [expected, undefined];
  try {
    fn();
  } catch (e) {
    if (!matches(e, expected)) fail(message, `threw the wrong error: ${e instanceof Error ? `${e.name}: ${e.message}` : show(e)}`);
    return;
  }
  fail(message, 'expected the function to throw');
}

function doesNotThrow(fn: () => unknown, message?: string | Error): void {
  try {
    fn();
  } catch (e) {
    fail(message, `did not expect a throw: ${(e as Error)?.message ?? show(e)}`);
  }
}

async function rejects(value: Promise<unknown> | (() => Promise<unknown>), expected?: Expected | string, message?: string | Error): Promise<void> {
  if (typeof expected === 'string') [message, expected] = [expected, undefined];
  try {
    await (typeof value === 'function' ? value() : value);
  } catch (e) {
    if (!matches(e, expected)) fail(message, `rejected with the wrong error: ${e instanceof Error ? `${e.name}: ${e.message}` : show(e)}`);
    return;
  }
  fail(message, 'expected a rejection');
}

async function doesNotReject(value: Promise<unknown> | (() => Promise<unknown>), message?: string | Error): Promise<void> {
  try {
    await (typeof value === 'function' ? value() : value);
  } catch (e) {
    fail(message, `did not expect a rejection: ${(e as Error)?.message ?? show(e)}`);
  }
}

function match(actual: string, pattern: RegExp, message?: string | Error): void {
  if (!pattern.test(actual)) fail(message, `${show(actual)} does not match ${String(pattern)}`);
}

function doesNotMatch(actual: string, pattern: RegExp, message?: string | Error): void {
  if (pattern.test(actual)) fail(message, `${show(actual)} matches ${String(pattern)}`);
}

function failNow(message?: string | Error): never {
  fail(message, 'failed');
}

interface Assert {
  (value: unknown, message?: string | Error): asserts value;
  ok(value: unknown, message?: string | Error): asserts value;
  equal<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  strictEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  notEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  notStrictEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  deepEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  deepStrictEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  notDeepStrictEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  throws(fn: () => unknown, expected?: Expected | string, message?: string | Error): void;
  doesNotThrow(fn: () => unknown, message?: string | Error): void;
  rejects(value: Promise<unknown> | (() => Promise<unknown>), expected?: Expected | string, message?: string | Error): Promise<void>;
  doesNotReject(value: Promise<unknown> | (() => Promise<unknown>), message?: string | Error): Promise<void>;
  match(actual: string, pattern: RegExp, message?: string | Error): void;
  doesNotMatch(actual: string, pattern: RegExp, message?: string | Error): void;
  fail(message?: string | Error): never;
  AssertionError: typeof AssertionError;
  strict: Assert;
}

const assert: Assert = Object.assign((value: unknown, message?: string | Error) => ok(value, message), {
  ok,
  equal,
  strictEqual: equal,
  notEqual,
  notStrictEqual: notEqual,
  deepEqual,
  deepStrictEqual: deepEqual,
  notDeepEqual,
  notDeepStrictEqual: notDeepEqual,
  throws,
  doesNotThrow,
  rejects,
  doesNotReject,
  match,
  doesNotMatch,
  fail: failNow,
  AssertionError,
  strict: undefined as unknown as Assert,
});
assert.strict = assert;

export default assert;
export { ok, equal, equal as strictEqual, notEqual, deepEqual, deepEqual as deepStrictEqual, notDeepEqual, throws, doesNotThrow, rejects, doesNotReject, match, doesNotMatch };
