/**
 * A browser user and a CLI user chat both ways through one hub: the invitation made in the
 * browser and accepted by `umbra accept`, then the reverse (made by `umbra invite`, pasted into
 * the browser). The CLI runs as a person runs it (child processes, --json, UMBRA_PASSPHRASE).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { killChildren, runFile } from '../../client/test/fixtures/children.ts';
import { launchChromium, type LaunchedChromium } from './harness/chromium.ts';
import { acceptInvitation, invitationText, openChat, send, signIn, startTestHub, waitForMessage, type RestartableHub } from './harness/app.ts';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../cli/bin/umbra.js');

describe('browser user and CLI user', () => {
  let dir = '';
  let hub: RestartableHub | undefined;
  let chromium: LaunchedChromium | undefined;
  let page: Page;
  let carol = '';

  async function umbra(args: string[]): Promise<string> {
    const r = await runFile(process.execPath, [BIN, '--data', carol, '--json', ...args], { env: { ...process.env, UMBRA_PASSPHRASE: 'carol passphrase' }, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `umbra ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Polls `umbra read` until a message from the peer with `text` is there. */
  async function cliReceives(conversation: string, text: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const read = JSON.parse(await umbra(['read', conversation])) as { messages: { text: string; outgoing: boolean }[] };
      if (read.messages.some((m) => !m.outgoing && m.text === text)) return;
      if (Date.now() > deadline) assert.fail(`the CLI never received ${JSON.stringify(text)}; it has ${JSON.stringify(read.messages)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'umbra-web-cli-'));
    carol = join(dir, 'carol');
    hub = await startTestHub(dir);
    const h = hub.current.hub;
    await umbra(['--hub', [h.issuer, h.ssa, ...h.rsas].join(','), 'init', '--name', 'Carol']);
    chromium = await launchChromium();
    page = await (await chromium.newContext()).newPage();
    await signIn(page, hub.webUrl, { name: 'Dana' });
  });

  after(async () => {
    await killChildren();
    await chromium?.close();
    await hub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('invitation made in the browser, accepted by the CLI: both ways', async () => {
    const text = await invitationText(page);
    // The CLI's JSON: docs/CLI.md (AcceptOutput).
    const accepted = JSON.parse(await umbra(['accept', text, '--wait', '0'])) as { conversation: { peerName: string } };
    assert.equal(accepted.conversation.peerName, 'Dana');
    await umbra(['send', '1', 'hello from the CLI', '--wait', '0']);
    await openChat(page, 'Carol');
    await waitForMessage(page, 'hello from the CLI', undefined, 60_000);
    await send(page, 'hello from the browser');
    await cliReceives('1', 'hello from the browser');
    await waitForMessage(page, 'hello from the browser', 'delivered', 60_000);
  });

  it('invitation made by the CLI, pasted into the browser: both ways', async () => {
    const inv = JSON.parse(await umbra(['invite', '--no-qr'])) as { invitation: { text: string } };
    await acceptInvitation(page, inv.invitation.text);
    await send(page, 'browser writes first');
    // Carol now has two conversations with Dana: the new one is the second.
    await cliReceives('2', 'browser writes first');
    await umbra(['send', '2', 'CLI answers', '--wait', '0']);
    await waitForMessage(page, 'CLI answers', undefined, 60_000);
    // Two conversations with the same name: told apart by their handles, which stay.
    const list = JSON.parse(await umbra(['list'])) as { conversations: { number: number; handle: string; peerName: string }[] };
    assert.deepEqual(list.conversations.map((c) => [c.number, c.handle, c.peerName]), [[1, 'dana', 'Dana'], [2, 'dana2', 'Dana']]);
  });
});
