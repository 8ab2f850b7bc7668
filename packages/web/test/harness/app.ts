/**
 * Helpers for the web app's end-to-end tests: a hub (services + web app, packages/cli/src/hub.ts)
 * on six free consecutive loopback ports so it can be stopped and started again at the same
 * addresses, and page actions written once (create or unlock an identity, open a tab, send).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startWebHub, WEB_PORT_OFFSET, type WebHub } from '../../../cli/src/hub.ts';
import { freeBasePort } from '../../../client/test/fixtures/ports.ts';

export interface RestartableHub {
  readonly current: WebHub;
  readonly webUrl: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A hub on fixed ports in `dir`; stop()/start() keep its addresses and data. */
export async function startTestHub(dir: string, extraOrigins: readonly string[] = []): Promise<RestartableHub> {
  mkdirSync(dir, { recursive: true });
  const port = await freeBasePort(WEB_PORT_OFFSET + 1); // services + web
  let hub: WebHub | null = await startWebHub({ dataDir: join(dir, 'hub'), port, webOrigins: extraOrigins });
  const webUrl = hub.webUrl!;
  return {
    get current() {
      if (hub === null) throw new Error('the hub is stopped');
      return hub;
    },
    webUrl,
    async stop() {
      await hub?.close();
      hub = null;
    },
    async start() {
      if (hub !== null) return;
      hub = await startWebHub({ dataDir: join(dir, 'hub'), port, webOrigins: extraOrigins });
    },
    async close() {
      await hub?.close();
      hub = null;
    },
  };
}

export const PASSPHRASE = 'correct horse battery';

/** Opens the app and creates an identity (first visit) or unlocks it. */
export async function signIn(page: Page, url: string, options: { name?: string; passphrase?: string } = {}): Promise<void> {
  await page.goto(url);
  const pass = options.passphrase ?? PASSPHRASE;
  const form = page.locator('[data-test=create-form], [data-test=unlock-form]');
  await form.waitFor();
  if ((await form.getAttribute('data-test')) === 'create-form') {
    await page.fill('input[name=name]', options.name ?? 'Someone');
    await page.fill('input[name=passphrase]', pass);
    await page.fill('input[name=confirm]', pass);
  } else {
    await page.fill('input[name=passphrase]', pass);
  }
  await page.click('[data-test=gate-submit]');
  await page.locator('nav.tabs').waitFor({ timeout: 60_000 });
}

export async function tab(page: Page, name: 'chats' | 'requests' | 'groups' | 'invite' | 'accept'): Promise<void> {
  await page.click(`[data-test=tab-${name}]`);
}

/** The invitation text shown on the Invite tab (`asRequests`: its users land in Requests). */
export async function invitationText(page: Page, options: { asRequests?: boolean } = {}): Promise<string> {
  await tab(page, 'invite');
  if (options.asRequests === true) {
    const before = await page.locator('[data-test=invite-text]').inputValue().catch(() => '');
    await page.check('[data-test=as-requests]');
    await page.waitForFunction((old) => {
      const v = (document.querySelector('[data-test=invite-text]') as HTMLTextAreaElement | null)?.value ?? '';
      return v.startsWith('umbra_') && v !== old;
    }, before);
  }
  const box = page.locator('[data-test=invite-text]');
  await page.waitForFunction(() => ((document.querySelector('[data-test=invite-text]') as HTMLTextAreaElement | null)?.value ?? '').startsWith('umbra_'));
  return box.inputValue();
}

export async function acceptInvitation(page: Page, text: string): Promise<void> {
  await tab(page, 'accept');
  await page.fill('[data-test=accept-text]', text);
  await page.click('[data-test=accept-submit]');
  await page.locator('[data-test=chat]').waitFor({ timeout: 30_000 });
}

export async function openChat(page: Page, peer: string): Promise<void> {
  await tab(page, 'chats');
  await page.click(`[data-test=chat-row][data-peer="${peer}"]`);
  await page.locator('[data-test=chat]').waitFor();
}

export async function send(page: Page, text: string): Promise<void> {
  await page.fill('[data-test=composer]', text);
  await page.click('[data-test=send]');
}

/** Waits until a message bubble with `text` is shown (and, for our own, with `status`). */
export async function waitForMessage(page: Page, text: string, status?: string, timeout = 30_000): Promise<void> {
  const selector = status === undefined ? '[data-test=message], [data-test=group-message]' : `[data-test=message][data-status="${status}"]`;
  await page.locator(selector, { hasText: text }).first().waitFor({ timeout });
}
