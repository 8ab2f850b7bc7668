/**
 * The part of node:test that the shared suites use (describe, it/test, before/after hooks), for
 * running them inside Chromium: registration builds a tree, `runRegistered()` walks it in order
 * (hooks as node:test runs them) and returns one result per test. Bundled in place of node:test
 * by harness/chromium.ts.
 */
type Fn = (context: TestContext) => unknown;
type HookFn = () => unknown;

export interface TestContext {
  readonly name: string;
  /** node:test's t.diagnostic: kept as a note on the result. */
  diagnostic(message: string): void;
}

interface TestNode {
  readonly kind: 'test';
  readonly name: string;
  readonly fn: Fn | undefined;
  readonly skip: boolean;
}

interface SuiteNode {
  readonly kind: 'suite';
  readonly name: string;
  readonly children: (TestNode | SuiteNode)[];
  readonly before: HookFn[];
  readonly after: HookFn[];
  readonly beforeEach: HookFn[];
  readonly afterEach: HookFn[];
  readonly skip: boolean;
}

export interface ShimResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
  /** t.diagnostic() messages. */
  readonly notes?: string;
  readonly ms: number;
}

function newSuite(name: string, skip = false): SuiteNode {
  return { kind: 'suite', name, children: [], before: [], after: [], beforeEach: [], afterEach: [], skip };
}

const root = newSuite('');
let current = root;

interface Options {
  skip?: boolean | string;
  todo?: boolean | string;
  timeout?: number;
  concurrency?: number | boolean;
}

function split(a: unknown, b: unknown): { options: Options; fn: ((...args: never[]) => unknown) | undefined } {
  if (typeof a === 'function') return { options: {}, fn: a as () => unknown };
  return { options: (a as Options | undefined) ?? {}, fn: b as (() => unknown) | undefined };
}

function registerSuite(name: string, a?: unknown, b?: unknown, forceSkip = false): void {
  const { options, fn } = split(a, b);
  const suite = newSuite(name, forceSkip || Boolean(options.skip) || Boolean(options.todo));
  current.children.push(suite);
  const parent = current;
  current = suite;
  try {
    // node:test allows an async describe body; the shared suites register synchronously.
    void (fn as (() => unknown) | undefined)?.();
  } finally {
    current = parent;
  }
}

function registerTest(name: string, a?: unknown, b?: unknown, forceSkip = false): void {
  const { options, fn } = split(a, b);
  current.children.push({ kind: 'test', name, fn: fn as Fn | undefined, skip: forceSkip || Boolean(options.skip) || Boolean(options.todo) });
}

export function describe(name: string, a?: unknown, b?: unknown): void {
  registerSuite(name, a, b);
}
describe.skip = (name: string, a?: unknown, b?: unknown) => registerSuite(name, a, b, true);
describe.only = describe;

export function it(name: string, a?: unknown, b?: unknown): void {
  registerTest(name, a, b);
}
it.skip = (name: string, a?: unknown, b?: unknown) => registerTest(name, a, b, true);
it.only = it;
it.todo = (name: string) => registerTest(name, undefined, undefined, true);

export const test = it;
export const suite = describe;

export function before(fn: HookFn): void {
  current.before.push(fn);
}
export function after(fn: HookFn): void {
  current.after.push(fn);
}
export function beforeEach(fn: HookFn): void {
  current.beforeEach.push(fn);
}
export function afterEach(fn: HookFn): void {
  current.afterEach.push(fn);
}

function message(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 6).join('\n')}` : ''}`;
  return String(e);
}

async function runSuite(suite: SuiteNode, path: string[], eachBefore: HookFn[], eachAfter: HookFn[], out: ShimResult[]): Promise<void> {
  const prefix = suite.name === '' ? path : [...path, suite.name];
  const beforeEachAll = [...eachBefore, ...suite.beforeEach];
  const afterEachAll = [...suite.afterEach, ...eachAfter];
  if (suite.skip) return;
  let setupError: unknown = null;
  try {
    for (const hook of suite.before) await hook();
  } catch (e) {
    setupError = e;
  }
  for (const child of suite.children) {
    if (child.kind === 'suite') {
      if (setupError === null) await runSuite(child, prefix, beforeEachAll, afterEachAll, out);
      continue;
    }
    if (child.skip || child.fn === undefined) continue;
    const name = [...prefix, child.name].join(' > ');
    const started = performance.now();
    if (setupError !== null) {
      out.push({ name, ok: false, error: `before hook failed: ${message(setupError)}`, ms: 0 });
      continue;
    }
    const notes: string[] = [];
    try {
      for (const hook of beforeEachAll) await hook();
      await child.fn({ name: child.name, diagnostic: (m) => notes.push(m) });
      for (const hook of afterEachAll) await hook();
      out.push({ name, ok: true, ms: performance.now() - started, ...(notes.length > 0 ? { notes: notes.join('\n') } : {}) });
    } catch (e) {
      out.push({ name, ok: false, error: message(e), ms: performance.now() - started });
    }
  }
  for (const hook of suite.after) {
    try {
      await hook();
    } catch (e) {
      out.push({ name: [...prefix, 'after hook'].join(' > '), ok: false, error: message(e), ms: 0 });
    }
  }
}

/** Runs every registered test in registration order. */
export async function runRegistered(): Promise<ShimResult[]> {
  const out: ShimResult[] = [];
  await runSuite(root, [], [], [], out);
  return out;
}

/** What an entry calls last: runs the suites and hands the results to the harness. */
export function publishResults(): void {
  const target = globalThis as { __umbraResults?: unknown };
  runRegistered().then(
    (results) => {
      target.__umbraResults = results;
    },
    (e: unknown) => {
      target.__umbraResults = { fatal: message(e) };
    },
  );
}
