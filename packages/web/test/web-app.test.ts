/**
 * The web app end to end in headless Chromium, through a real hub (services + the web app served
 * by packages/cli/src/hub.ts): two browser contexts (Alice on a phone-sized screen, Bob on a
 * desktop one) create identities, connect through an invitation link, chat both ways with send
 * status, handle a message request, reload (history and sessions stay), survive a hub outage
 * (queued, then delivered without a click) and a tab closed right after sending, use a group,
 * and get clear errors for a wrong passphrase, a second tab of the same identity (refused: one
 * tab per identity, docs/WEB.md) and a malformed invitation. The page's raw IndexedDB is read
 * back to check that no message, name or passphrase is stored in clear, and a third person's
 * identity and chat survive a restart of the whole browser on a profile on disk. Screenshots of the main
 * views go to packages/web/screenshots/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium as playwrightChromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, launchChromium, type LaunchedChromium } from './harness/chromium.ts';
import { acceptInvitation, invitationText, openChat, PASSPHRASE, send, signIn, startTestHub, tab, waitForMessage, type RestartableHub } from './harness/app.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(here, '..', 'screenshots');
const PHONE = { viewport: { width: 390, height: 780 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1024, height: 720 } };

describe('web app in Chromium', () => {
  let dir = '';
  let hub: RestartableHub | undefined;
  let chromium: LaunchedChromium | undefined;
  let aliceContext: BrowserContext;
  let bobContext: BrowserContext;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
  const watch = (who: string, page: Page) => page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'umbra-web-'));
    hub = await startTestHub(dir);
    chromium = await launchChromium();
    aliceContext = await chromium.newContext(PHONE);
    bobContext = await chromium.newContext(DESKTOP);
    alice = await aliceContext.newPage();
    bob = await bobContext.newPage();
    watch('alice', alice);
    watch('bob', bob);
  });

  after(async () => {
    await chromium?.close();
    await hub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates identities, connects through an invitation link, and chats both ways with send status', async () => {
    await alice.goto(hub!.webUrl);
    await alice.locator('[data-test=create-form]').waitFor();
    await shot(alice, 'create-identity');
    await signIn(alice, hub!.webUrl, { name: 'Alice' });
    await signIn(bob, hub!.webUrl, { name: 'Bob' });

    // Alice's link puts whoever opens it in her Requests.
    const text = await invitationText(alice, { asRequests: true });
    await alice.locator('[data-test=invite-qr] svg').waitFor();
    await shot(alice, 'invite');
    const link = await alice.locator('[data-test=invite-link]').inputValue();
    assert.ok(link.startsWith(`${hub!.webUrl}#invite=`));
    assert.ok(decodeURIComponent(link.slice(link.indexOf('#invite=') + 8)) === text);

    // Bob opens the link: the app offers to accept it.
    await bob.goto(link);
    await bob.locator('[data-test=accept]').waitFor();
    assert.equal(await bob.locator('[data-test=accept-text]').inputValue(), text);
    await bob.click('[data-test=accept-submit]');
    await bob.locator('[data-test=chat]').waitFor();
    assert.equal(await bob.locator('[data-test=chat-peer]').textContent(), 'Alice');
    await send(bob, 'Hello Alice, it is Bob');

    // Alice: a request with a badge; she allows it and the conversation opens.
    await alice.locator('[data-test=request-count]').waitFor({ timeout: 30_000 });
    await tab(alice, 'requests');
    await alice.locator('[data-test=request-row][data-peer="Bob"]').waitFor();
    await shot(alice, 'requests');
    await alice.click('[data-test=allow]');
    await waitForMessage(alice, 'Hello Alice, it is Bob');
    await send(alice, 'Hi Bob!');
    await waitForMessage(bob, 'Hi Bob!');
    await waitForMessage(alice, 'Hi Bob!', 'delivered');
    await waitForMessage(bob, 'Hello Alice, it is Bob', 'delivered');

    // Unread counts in the list: Bob writes twice while Alice looks at her chat list.
    await tab(alice, 'chats');
    await send(bob, 'one');
    await send(bob, 'two');
    await alice.locator('[data-test=chat-row][data-peer="Bob"] [data-test=unread]', { hasText: '2' }).waitFor({ timeout: 30_000 });
    await shot(alice, 'chat-list');
    await openChat(alice, 'Bob');
    await waitForMessage(alice, 'two');
    await shot(alice, 'chat');
    await tab(alice, 'chats');
    await alice.locator('[data-test=chat-row][data-peer="Bob"] [data-test=unread]').waitFor({ state: 'detached' });

    // The safety number is the same on both sides, with its QR code.
    await openChat(alice, 'Bob');
    await alice.click('[data-test=safety-link]');
    const aliceNumber = await alice.locator('[data-test=safety-number]').textContent();
    await alice.locator('[data-test=safety-qr] svg').waitFor();
    await shot(alice, 'safety-number');
    await bob.click('[data-test=safety-link]');
    assert.equal(await bob.locator('[data-test=safety-number]').textContent(), aliceNumber);
    assert.match(aliceNumber ?? '', /^(\d{5} ){11}\d{5}$/);
  });

  it("the page's IndexedDB holds no message, name or passphrase in clear", async () => {
    const needles = ['Hello Alice, it is Bob', 'Hi Bob!', 'Alice', 'Bob', PASSPHRASE];
    // Plain JavaScript text: tsx would add helpers (__name) to a function passed to evaluate.
    const dump = (await alice.evaluate(`(async (needles) => {
      const done = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
      const db = await done(indexedDB.open('umbra-web'));
      const chunks = [];
      const latin1 = new TextDecoder('latin1');
      const walk = (x) => {
        if (x instanceof Uint8Array) chunks.push(latin1.decode(x));
        else if (x instanceof ArrayBuffer) chunks.push(latin1.decode(new Uint8Array(x)));
        else if (typeof x === 'string' || typeof x === 'number') chunks.push(String(x));
        else if (Array.isArray(x)) x.forEach(walk);
        else if (x !== null && typeof x === 'object') for (const [k, v] of Object.entries(x)) { chunks.push(k); walk(v); }
      };
      let records = 0;
      for (const name of Array.from(db.objectStoreNames)) {
        const store = db.transaction(name, 'readonly').objectStore(name);
        const [keys, values] = await Promise.all([done(store.getAllKeys()), done(store.getAll())]);
        records += keys.length;
        keys.forEach(walk);
        values.forEach(walk);
      }
      db.close();
      const all = chunks.join('\\n');
      return { records, header: all.includes('umbra-store-kdf/v2'), found: needles.filter((n) => all.includes(n)) };
    })(${JSON.stringify(needles)})`)) as { records: number; header: boolean; found: string[] };
    assert.ok(dump.records > 10, `only ${dump.records} records read`);
    assert.ok(dump.header, 'the dump reads the clear key header, so it reads the database');
    assert.deepEqual(dump.found, []);
  });

  it('gives a clear message for a malformed invitation', async () => {
    await tab(bob, 'accept');
    await bob.fill('[data-test=accept-text]', 'umbra_chatintro_1_this-is-not-an-invitation');
    await bob.click('[data-test=accept-submit]');
    await bob.locator('[data-test=error]', { hasText: 'not a valid invitation' }).waitFor();
    await bob.fill('[data-test=accept-text]', 'hello');
    await bob.click('[data-test=accept-submit]');
    await bob.locator('[data-test=error]', { hasText: 'not a valid invitation' }).waitFor();
  });

  it('reload: a wrong passphrase is refused clearly; history and sessions remain', async () => {
    await alice.reload();
    await alice.locator('[data-test=unlock-form]').waitFor();
    await alice.fill('input[name=passphrase]', 'not the passphrase');
    await alice.click('[data-test=gate-submit]');
    await alice.locator('[data-test=error]', { hasText: 'Wrong passphrase' }).waitFor({ timeout: 30_000 });
    await shot(alice, 'wrong-passphrase');
    await alice.fill('input[name=passphrase]', PASSPHRASE);
    await alice.click('[data-test=gate-submit]');
    await alice.locator('nav.tabs').waitFor({ timeout: 30_000 });
    await signIn(bob, hub!.webUrl);
    await openChat(alice, 'Bob');
    await openChat(bob, 'Alice');
    for (const t of ['Hello Alice, it is Bob', 'Hi Bob!', 'one', 'two']) {
      await waitForMessage(alice, t);
      await waitForMessage(bob, t);
    }
    await send(alice, 'after reload, from Alice');
    await send(bob, 'after reload, from Bob');
    await waitForMessage(bob, 'after reload, from Alice');
    await waitForMessage(alice, 'after reload, from Bob');
  });

  it('a second tab of the same identity is refused clearly; the first keeps working', async () => {
    const second = await aliceContext.newPage();
    watch('alice (second tab)', second);
    await second.goto(hub!.webUrl);
    await second.locator('[data-test=unlock-form]').waitFor();
    await second.fill('input[name=passphrase]', PASSPHRASE);
    await second.click('[data-test=gate-submit]');
    await second.locator('[data-test=error]', { hasText: 'open in another tab' }).waitFor({ timeout: 30_000 });
    assert.equal(await second.locator('nav.tabs').count(), 0);
    await shot(second, 'second-tab');
    await second.close();
    await send(alice, 'still here after the second tab');
    await waitForMessage(bob, 'still here after the second tab');
  });

  it('hub down: the message shows as queued, then arrives when the hub is back, without a click', async () => {
    await hub!.stop();
    await send(alice, 'sent while the hub is down');
    // Nothing outside the tab has it: it shows as queued (the SDK says 'sent' only once a
    // service accepted the envelope), and stays so while the hub is down.
    const waiting = alice.locator('[data-test=message][data-status="queued"]', { hasText: 'sent while the hub is down' });
    await waiting.waitFor({ timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    await waiting.waitFor({ timeout: 1000 });
    assert.equal(await alice.locator('[data-test=message][data-status="delivered"]', { hasText: 'sent while the hub is down' }).count(), 0);
    await shot(alice, 'queued-hub-down');
    await hub!.start();
    await waitForMessage(bob, 'sent while the hub is down', undefined, 45_000);
    await waitForMessage(alice, 'sent while the hub is down', 'delivered', 30_000);
  });

  it('closing the tab right after sending loses nothing: the next tab sends it', async () => {
    // With the hub down the message can only survive in the tab's store: once its bubble shows
    // (the view reads the store), the tab is closed at once, and a new tab must deliver it.
    await hub!.stop();
    await send(alice, 'typed, then the tab closed');
    await alice.locator('[data-test=message][data-status="queued"]', { hasText: 'typed, then the tab closed' }).waitFor({ timeout: 30_000 });
    await alice.close();
    await hub!.start();
    alice = await aliceContext.newPage();
    watch('alice', alice);
    await signIn(alice, hub!.webUrl);
    await waitForMessage(bob, 'typed, then the tab closed', undefined, 45_000);
    await openChat(alice, 'Bob');
    await waitForMessage(alice, 'typed, then the tab closed', 'delivered', 30_000);
  });

  it('groups: create with a contact, join, talk both ways, remove the member', async () => {
    await tab(alice, 'groups');
    await alice.click('[data-test=new-group]');
    await alice.fill('input[name=group-name]', 'Book club');
    await alice.check('[data-test=member-choice][data-peer="Bob"]');
    await alice.click('[data-test=create-group]');
    await alice.locator('[data-test=group-name]', { hasText: 'Book club' }).waitFor();
    await tab(bob, 'groups');
    await bob.locator('[data-test=group-row][data-group="Book club"] [data-test=join-group]').click({ timeout: 30_000 });
    await bob.locator('[data-test=group-name]', { hasText: 'Book club' }).waitFor();
    await bob.locator('[data-test=composer]').waitFor({ timeout: 30_000 });
    await send(bob, 'Bob joined the club');
    await waitForMessage(alice, 'Bob joined the club');
    await send(alice, 'Welcome, Bob');
    await waitForMessage(bob, 'Welcome, Bob');
    await alice.click('[data-test=members] summary');
    await shot(alice, 'group');
    assert.equal(await alice.locator('[data-test=member]').count(), 2);
    await alice.click('[data-test=remove-member]');
    await alice.locator('[data-test=member]').nth(1).waitFor({ state: 'detached', timeout: 30_000 });
    // Bob learns he was removed: the group leaves his list of active groups.
    await tab(bob, 'groups');
    await bob.locator('[data-test=group-row][data-group="Book club"]').waitFor({ state: 'detached', timeout: 30_000 });
  });

  it('a browser restart on a disk profile keeps the identity, its chats and history', async () => {
    // The other contexts are off the record (IndexedDB in memory): this one is a real profile on disk.
    const profile = join(dir, 'chromium-profile');
    const launch = () => playwrightChromium.launchPersistentContext(profile, { executablePath: chromiumPath()!, args: CHROMIUM_ARGS });
    let carol = await launch();
    try {
      let page = carol.pages()[0] ?? (await carol.newPage());
      watch('carol', page);
      await signIn(page, hub!.webUrl, { name: 'Carol' });
      await acceptInvitation(page, await invitationText(alice));
      await send(page, 'written before the browser restart');
      await page.locator('[data-test=message]', { hasText: 'written before the browser restart' }).waitFor();
      await carol.close();
      carol = await launch();
      page = carol.pages()[0] ?? (await carol.newPage());
      watch('carol', page);
      await page.goto(hub!.webUrl);
      await page.locator('[data-test=unlock-form]').waitFor();
      await signIn(page, hub!.webUrl);
      await openChat(page, 'Alice');
      await waitForMessage(page, 'written before the browser restart');
    } finally {
      await carol.close();
    }
  });

  it('no page errors in either tab', () => {
    assert.deepEqual(pageErrors, []);
  });
});
