/**
 * The web chat app's views (Preact, written with `h` so the repo's tsconfig needs no JSX
 * setting). One component per screen; every piece of state comes from the SDK (the store is the
 * truth), re-read on the client's events and once a second, so status changes (queued → sent →
 * delivered) show without bookkeeping here. `data-test` attributes are what the Chromium tests
 * click on.
 */
import { h, type ComponentChildren, type JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { refusalReasonText, type ConversationInfo, type GroupInfo, type GroupMemberInfo, type GroupMessageInfo, type MessageInfo } from '@umbra/client/browser';
import { qrSvg } from './qr.ts';
import { explain, loadHubConfig, WebSession, type HubConfig } from './session.ts';

type View =
  | { readonly name: 'chats' }
  | { readonly name: 'chat'; readonly id: string }
  | { readonly name: 'safety'; readonly id: string }
  | { readonly name: 'requests' }
  | { readonly name: 'invite' }
  | { readonly name: 'accept'; readonly text?: string }
  | { readonly name: 'groups' }
  | { readonly name: 'group'; readonly chatId: string }
  | { readonly name: 'new-group' };

/** The invitation link's fragment: `#invite=<text>` (a fragment never reaches a server). */
const INVITE_FRAGMENT = 'invite=';

function invitationFromLocation(): string | undefined {
  const hash = location.hash.slice(1);
  if (!hash.startsWith(INVITE_FRAGMENT)) return undefined;
  try {
    return decodeURIComponent(hash.slice(INVITE_FRAGMENT.length));
  } catch {
    return hash.slice(INVITE_FRAGMENT.length);
  }
}

export function invitationLink(text: string): string {
  return `${location.origin}${location.pathname}#${INVITE_FRAGMENT}${encodeURIComponent(text)}`;
}

/** Re-renders on every client event and on a 1 s tick; returns a counter to depend on. */
function useClientTick(session: WebSession): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((t) => t + 1);
    const events = ['message', 'sent', 'acked', 'request', 'conversation-started', 'conversation-refused', 'group-invited', 'group-updated', 'group-message', 'group-change'] as const;
    for (const e of events) session.client.on(e, bump);
    const timer = setInterval(bump, 1000);
    return () => {
      for (const e of events) session.client.off(e, bump);
      clearInterval(timer);
    };
  }, [session]);
  return tick;
}

/** Runs `load` whenever `deps` change; keeps the last value while the next one loads. */
function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { value: T | undefined; error: string | null } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => {
        if (live) {
          setValue(v);
          setError(null);
        }
      },
      (e: unknown) => {
        if (live) setError(explain(e).message);
      },
    );
    return () => {
      live = false;
    };
  }, deps);
  return { value, error };
}

function ErrorLine(props: { message: string | null }): JSX.Element | null {
  return props.message ? h('p', { class: 'error', role: 'alert', 'data-test': 'error' }, props.message) : null;
}

function Qr(props: { text: string; label: string; test: string }): JSX.Element {
  return h('div', { class: 'qr', 'data-test': props.test, dangerouslySetInnerHTML: { __html: qrSvg(props.text, props.label) } });
}

function timeOf(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

const STATUS_LABEL: Record<MessageInfo['status'], string> = { queued: 'queued', sent: 'sent', acked: 'delivered', failed: 'failed', received: '' };

// ---- identity ---------------------------------------------------------------------------

function Gate(props: { hub: HubConfig; exists: boolean; onOpen: (s: WebSession) => void }): JSX.Element {
  const [name, setName] = useState('');
  const [passphrase, setPassphrase] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const creating = !props.exists;
  const submit = async (e: Event) => {
    e.preventDefault();
    if (creating && passphrase !== confirm) {
      setError('The two passphrases differ.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      props.onOpen(await WebSession.open(props.hub, { passphrase, ...(creating ? { name } : {}) }));
    } catch (err) {
      setError(explain(err, props.hub).message);
      setBusy(false);
    }
  };
  return h(
    'form',
    { class: 'card gate', onSubmit: submit, 'data-test': creating ? 'create-form' : 'unlock-form' },
    h('h1', null, 'Umbra'),
    h('p', { class: 'muted' }, creating ? 'Create your identity. It stays in this browser, encrypted with your passphrase.' : 'Unlock your identity.'),
    creating && h('label', null, 'Your name', h('input', { name: 'name', value: name, autocomplete: 'nickname', onInput: (e: Event) => setName((e.target as HTMLInputElement).value), required: true, maxLength: 128 })),
    h('label', null, 'Passphrase', h('input', { name: 'passphrase', type: 'password', value: passphrase, autocomplete: creating ? 'new-password' : 'current-password', onInput: (e: Event) => setPassphrase((e.target as HTMLInputElement).value), required: true })),
    creating && h('label', null, 'Passphrase again', h('input', { name: 'confirm', type: 'password', value: confirm, autocomplete: 'new-password', onInput: (e: Event) => setConfirm((e.target as HTMLInputElement).value), required: true })),
    h('button', { type: 'submit', disabled: busy, 'data-test': 'gate-submit' }, busy ? (creating ? 'Creating…' : 'Unlocking…') : creating ? 'Create identity' : 'Unlock'),
    h(ErrorLine, { message: error }),
  );
}

// ---- conversations ----------------------------------------------------------------------

function ChatList(props: { session: WebSession; go: (v: View) => void; tick: number }): JSX.Element {
  const { value: list, error } = useLoad(() => props.session.client.conversations({ consent: 'allowed' }), [props.tick]);
  return h(
    'section',
    { 'data-test': 'chat-list' },
    h('h2', null, 'Chats'),
    h(ErrorLine, { message: error }),
    list !== undefined && list.length === 0 && h('p', { class: 'muted' }, 'No conversations yet. Invite someone, or accept an invitation.'),
    h(
      'ul',
      { class: 'list' },
      (list ?? []).map((c) =>
        h(
          'li',
          { key: c.id },
          h(
            'button',
            { class: 'row', onClick: () => props.go({ name: 'chat', id: c.id }), 'data-test': 'chat-row', 'data-peer': c.peerName },
            h('span', { class: 'name' }, c.peerName || 'Unnamed'),
            h('span', { class: 'when muted' }, timeOf(c.lastActivityAt)),
            c.unreadCount > 0 ? h('span', { class: 'badge', 'data-test': 'unread' }, String(c.unreadCount)) : null,
          ),
        ),
      ),
    ),
  );
}

function Requests(props: { session: WebSession; go: (v: View) => void; tick: number }): JSX.Element {
  const [error, setError] = useState<string | null>(null);
  const { value: list } = useLoad(() => props.session.client.requests(), [props.tick]);
  const act = (c: ConversationInfo, allow: boolean) =>
    (allow ? props.session.client.acceptRequest(c.id) : props.session.client.block(c.id)).then(
      () => (allow ? props.go({ name: 'chat', id: c.id }) : props.go({ name: 'requests' })),
      (e: unknown) => setError(explain(e).message),
    );
  return h(
    'section',
    { 'data-test': 'requests' },
    h('h2', null, 'Message requests'),
    h('p', { class: 'muted' }, 'People who wrote to you first. Nothing is sent back until you allow them.'),
    h(ErrorLine, { message: error }),
    list !== undefined && list.length === 0 && h('p', { class: 'muted' }, 'No requests.'),
    h(
      'ul',
      { class: 'list' },
      (list ?? []).map((c) =>
        h(
          'li',
          { key: c.id, class: 'row', 'data-test': 'request-row', 'data-peer': c.peerName },
          h('span', { class: 'name' }, c.peerName || 'Unnamed'),
          c.unreadCount > 0 ? h('span', { class: 'badge' }, String(c.unreadCount)) : null,
          h('button', { onClick: () => act(c, true), 'data-test': 'allow' }, 'Allow'),
          h('button', { class: 'danger', onClick: () => act(c, false), 'data-test': 'block' }, 'Block'),
        ),
      ),
    ),
  );
}

function Composer(props: { onSend: (text: string) => Promise<void>; placeholder: string }): JSX.Element {
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const t = text.trim();
    if (t === '') return;
    // Cleared at once, not when the send resolves: clearing then would wipe what was typed meanwhile.
    setText('');
    try {
      await props.onSend(t);
      setError(null);
    } catch (err) {
      setText((current) => (current === '' ? t : current));
      setError(explain(err).message);
    }
  };
  return h(
    'form',
    { class: 'composer', onSubmit: submit },
    h('input', { name: 'message', value: text, placeholder: props.placeholder, autocomplete: 'off', onInput: (e: Event) => setText((e.target as HTMLInputElement).value), 'data-test': 'composer' }),
    h('button', { type: 'submit', 'data-test': 'send' }, 'Send'),
    h(ErrorLine, { message: error }),
  );
}

function Bubble(props: { outgoing: boolean; text: string; meta: string; status?: string; test: string }): JSX.Element {
  return h(
    'li',
    { class: `bubble ${props.outgoing ? 'out' : 'in'}`, 'data-test': props.test, ...(props.status !== undefined ? { 'data-status': props.status } : {}) },
    h('span', { class: 'text' }, props.text),
    h('span', { class: 'meta' }, props.meta, props.status ? h('span', { class: `status ${props.status}`, 'data-test': 'status' }, ` · ${props.status}`) : null),
  );
}

function useScrollToEnd(dep: unknown): { current: HTMLUListElement | null } {
  const ref = useRef<HTMLUListElement>(null);
  useEffect(() => {
    ref.current?.scrollTo({ top: ref.current.scrollHeight });
  }, [dep]);
  return ref;
}

function Chat(props: { session: WebSession; id: string; go: (v: View) => void; tick: number }): JSX.Element {
  const { client } = props.session;
  const { value, error } = useLoad(async () => ({ info: await client.conversation(props.id), page: await client.history(props.id, { limit: 200 }) }), [props.id, props.tick]);
  const count = value?.page.messages.length ?? 0;
  const unread = value?.info.unreadCount ?? 0;
  useEffect(() => {
    if (unread > 0) void client.markRead(props.id).catch(() => undefined);
  }, [props.id, unread]);
  const listRef = useScrollToEnd(count);
  const send = useCallback(async (text: string) => void (await client.send(props.id, text)), [props.id]);
  return h(
    'section',
    { class: 'chat', 'data-test': 'chat' },
    h(
      'header',
      { class: 'chat-head' },
      h('button', { class: 'link', onClick: () => props.go({ name: 'chats' }) }, '‹ Chats'),
      h('h2', { 'data-test': 'chat-peer' }, value?.info.peerName ?? ''),
      h('button', { class: 'link', onClick: () => props.go({ name: 'safety', id: props.id }), 'data-test': 'safety-link' }, 'Safety number'),
    ),
    h(ErrorLine, { message: error }),
    value?.info.consent === 'unknown' && h('p', { class: 'notice' }, 'This is a message request. ', h('button', { class: 'link', onClick: () => props.go({ name: 'requests' }) }, 'Allow or block')),
    value?.info.refusal != null &&
      h(
        'p',
        { class: 'notice', 'data-test': 'refused' },
        `${value.info.peerName || 'They'} refused this first contact: ${refusalReasonText(value.info.refusal.reason)}. Ask for a new invitation.`,
      ),
    h(
      'ul',
      { class: 'messages', ref: listRef, 'data-test': 'messages' },
      (value?.page.messages ?? []).filter((m) => m.kind === 'text').map((m) =>
        h(Bubble, { key: m.id, outgoing: m.outgoing, text: m.text ?? '', meta: timeOf(m.sentAt), ...(m.outgoing ? { status: STATUS_LABEL[m.status] } : {}), test: 'message' }),
      ),
    ),
    value?.info.consent !== 'denied' && h(Composer, { onSend: send, placeholder: 'Message' }),
  );
}

function groupDigits(n: string): string {
  return n.replace(/(\d{5})(?=\d)/g, '$1 ');
}

function Safety(props: { session: WebSession; id: string; go: (v: View) => void }): JSX.Element {
  const { value, error } = useLoad(() => props.session.client.conversation(props.id), [props.id]);
  return h(
    'section',
    { 'data-test': 'safety' },
    h('button', { class: 'link', onClick: () => props.go({ name: 'chat', id: props.id }) }, '‹ Back'),
    h('h2', null, `Safety number with ${value?.peerName ?? '…'}`),
    h('p', { class: 'muted' }, 'Compare these digits with what your contact sees (in person, or by scanning the code). If they match, nobody sits between you.'),
    h(ErrorLine, { message: error }),
    value && h('p', { class: 'digits', 'data-test': 'safety-number' }, groupDigits(value.safetyNumber)),
    value && h(Qr, { text: value.safetyNumber, label: 'Safety number QR code', test: 'safety-qr' }),
  );
}

// ---- invitations ------------------------------------------------------------------------

function Invite(props: { session: WebSession }): JSX.Element {
  const [copied, setCopied] = useState<string | null>(null);
  // Reusable: one link for everyone. "As requests": whoever uses it lands in Requests first.
  const [asRequests, setAsRequests] = useState(false);
  const { value: text, error } = useLoad(async () => (await props.session.client.createInvitation({ reusable: true, arrivesAsRequest: asRequests })).text, [asRequests]);
  const link = text === undefined ? '' : invitationLink(text);
  const copy = (what: string, label: string) =>
    navigator.clipboard?.writeText(what).then(
      () => setCopied(label),
      () => setCopied(null),
    );
  return h(
    'section',
    { 'data-test': 'invite' },
    h('h2', null, 'Invite someone'),
    h('p', { class: 'muted' }, 'Send this link (or let them scan the code). Opening it in Umbra starts a conversation with you. Anyone who has the link can write to you.'),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: asRequests, onChange: () => setAsRequests(!asRequests), 'data-test': 'as-requests' }), 'Put people who use this link in Requests first'),
    h(ErrorLine, { message: error }),
    text !== undefined &&
      h(
        'div',
        null,
        h(Qr, { text: link, label: 'Invitation QR code', test: 'invite-qr' }),
        h('label', null, 'Invitation link', h('textarea', { readOnly: true, rows: 3, value: link, 'data-test': 'invite-link' })),
        h('div', { class: 'actions' }, h('button', { onClick: () => copy(link, 'link'), type: 'button' }, 'Copy link'), h('button', { onClick: () => copy(text, 'text'), type: 'button' }, 'Copy invitation text')),
        h('details', null, h('summary', null, 'Invitation text (for the command line)'), h('textarea', { readOnly: true, rows: 4, value: text, 'data-test': 'invite-text' })),
        copied && h('p', { class: 'muted' }, `Copied the ${copied}.`),
      ),
  );
}

function Accept(props: { session: WebSession; initial?: string; go: (v: View) => void }): JSX.Element {
  const [text, setText] = useState(props.initial ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const pasted = text.trim();
    // A pasted link works too: take the invitation out of its fragment.
    const hashAt = pasted.indexOf(`#${INVITE_FRAGMENT}`);
    const invitation = hashAt >= 0 ? decodeURIComponent(pasted.slice(hashAt + 1 + INVITE_FRAGMENT.length)) : pasted;
    try {
      const c = await props.session.client.accept(invitation);
      history.replaceState(null, '', location.pathname);
      props.go({ name: 'chat', id: c.id });
    } catch (err) {
      setError(explain(err, props.session.hub).message);
      setBusy(false);
    }
  };
  return h(
    'form',
    { onSubmit: submit, 'data-test': 'accept' },
    h('h2', null, 'Accept an invitation'),
    props.initial !== undefined && h('p', { class: 'notice' }, 'You opened an invitation link. Accept it to start the conversation.'),
    h('label', null, 'Invitation (text or link)', h('textarea', { rows: 5, value: text, onInput: (e: Event) => setText((e.target as HTMLTextAreaElement).value), 'data-test': 'accept-text' })),
    h('button', { type: 'submit', disabled: busy || text.trim() === '', 'data-test': 'accept-submit' }, busy ? 'Accepting…' : 'Accept'),
    h(ErrorLine, { message: error }),
  );
}

// ---- groups -----------------------------------------------------------------------------

function Groups(props: { session: WebSession; go: (v: View) => void; tick: number }): JSX.Element {
  const [error, setError] = useState<string | null>(null);
  const { value: list } = useLoad(async () => (await props.session.client.groups.list()) as GroupInfo[], [props.tick]);
  const join = (g: GroupInfo) => props.session.client.groups.accept(g.chatId).then(() => props.go({ name: 'group', chatId: g.chatId }), (e: unknown) => setError(explain(e).message));
  return h(
    'section',
    { 'data-test': 'groups' },
    h('h2', null, 'Groups'),
    h('button', { onClick: () => props.go({ name: 'new-group' }), 'data-test': 'new-group' }, 'New group'),
    h(ErrorLine, { message: error }),
    h(
      'ul',
      { class: 'list' },
      (list ?? [])
        .filter((g) => g.status !== 'left' && g.status !== 'removed')
        .map((g) =>
          h(
            'li',
            { key: g.chatId, class: 'row', 'data-test': 'group-row', 'data-group': g.name },
            h('button', { class: 'row', onClick: () => props.go({ name: 'group', chatId: g.chatId }) }, h('span', { class: 'name' }, g.name), h('span', { class: 'muted' }, `${g.memberCount} members`)),
            g.status === 'invited' && h('button', { onClick: () => join(g), 'data-test': 'join-group' }, 'Join'),
          ),
        ),
    ),
  );
}

function NewGroup(props: { session: WebSession; go: (v: View) => void }): JSX.Element {
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [error, setError] = useState<string | null>(null);
  const { value: contacts } = useLoad(() => props.session.client.conversations({ consent: 'allowed' }), []);
  const toggle = (id: string) => {
    const next = new Set(chosen);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setChosen(next);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const g = await props.session.client.groups.create(name.trim(), [...chosen]);
      props.go({ name: 'group', chatId: g.chatId });
    } catch (err) {
      setError(explain(err).message);
    }
  };
  return h(
    'form',
    { onSubmit: submit, 'data-test': 'new-group-form' },
    h('h2', null, 'New group'),
    h('label', null, 'Name', h('input', { name: 'group-name', value: name, onInput: (e: Event) => setName((e.target as HTMLInputElement).value), required: true, maxLength: 64 })),
    h('fieldset', null, h('legend', null, 'Members'), (contacts ?? []).map((c) => h('label', { key: c.id, class: 'check' }, h('input', { type: 'checkbox', checked: chosen.has(c.id), onChange: () => toggle(c.id), 'data-test': 'member-choice', 'data-peer': c.peerName }), c.peerName))),
    h('button', { type: 'submit', disabled: name.trim() === '', 'data-test': 'create-group' }, 'Create group'),
    h(ErrorLine, { message: error }),
  );
}

function memberLabel(m: GroupMemberInfo): string {
  const who = m.state === 'self' ? 'You' : (m.name ?? `${(m.memberId ?? 'invited').slice(0, 10)}…`);
  const tags = [m.admin ? 'admin' : null, m.state === 'pending' ? 'connecting' : null, m.state === 'invited' ? 'invited' : null].filter(Boolean);
  return tags.length > 0 ? `${who} (${tags.join(', ')})` : who;
}

function Group(props: { session: WebSession; chatId: string; go: (v: View) => void; tick: number }): JSX.Element {
  const { groups } = props.session.client;
  const [adding, setAdding] = useState('');
  const [error, setError] = useState<string | null>(null);
  const { value, error: loadError } = useLoad(
    async () => ({
      info: (await groups.get(props.chatId)) as GroupInfo,
      members: (await groups.members(props.chatId)) as GroupMemberInfo[],
      page: (await groups.history(props.chatId, { limit: 200 })) as { messages: readonly GroupMessageInfo[] },
      contacts: await props.session.client.conversations({ consent: 'allowed' }),
    }),
    [props.chatId, props.tick],
  );
  const listRef = useScrollToEnd(value?.page.messages.length ?? 0);
  const send = useCallback(async (text: string) => void (await groups.send(props.chatId, text)), [props.chatId]);
  const act = (p: Promise<unknown>) => p.then(() => setError(null), (e: unknown) => setError(explain(e).message));
  const inGroup = new Set((value?.members ?? []).map((m) => m.conversationId).filter((id): id is string => id !== null));
  const candidates = (value?.contacts ?? []).filter((c) => !inGroup.has(c.id));
  const admin = value?.info.admin === true;
  const children: ComponentChildren[] = [
    h('header', { class: 'chat-head' }, h('button', { class: 'link', onClick: () => props.go({ name: 'groups' }) }, '‹ Groups'), h('h2', { 'data-test': 'group-name' }, value?.info.name ?? '')),
    h(ErrorLine, { message: error ?? loadError }),
    h(
      'details',
      { class: 'members', 'data-test': 'members' },
      h('summary', null, `${value?.members.length ?? 0} members`),
      h(
        'ul',
        null,
        (value?.members ?? []).map((m, i) =>
          h(
            'li',
            { key: m.memberId ?? `invited-${i}`, 'data-test': 'member' },
            memberLabel(m),
            admin && m.state !== 'self' && m.memberId !== null && h('button', { class: 'link danger', onClick: () => act(groups.remove(props.chatId, m.memberId!)), 'data-test': 'remove-member' }, 'Remove'),
          ),
        ),
      ),
      admin &&
        candidates.length > 0 &&
        h(
          'div',
          { class: 'actions' },
          h('select', { value: adding, onChange: (e: Event) => setAdding((e.target as HTMLSelectElement).value), 'data-test': 'add-choice' }, h('option', { value: '' }, 'Add a contact…'), candidates.map((c) => h('option', { key: c.id, value: c.id }, c.peerName))),
          h('button', { disabled: adding === '', onClick: () => act(groups.add(props.chatId, adding).then(() => setAdding(''))), 'data-test': 'add-member' }, 'Add'),
        ),
    ),
    h(
      'ul',
      { class: 'messages', ref: listRef, 'data-test': 'group-messages' },
      (value?.page.messages ?? []).map((m) => h(Bubble, { key: m.id, outgoing: m.outgoing, text: m.text, meta: `${m.outgoing ? '' : `${m.authorName ?? 'someone'} · `}${timeOf(m.sentAt)}`, test: 'group-message' })),
    ),
    value?.info.status === 'member' && h(Composer, { onSend: send, placeholder: 'Message the group' }),
  ];
  return h('section', { class: 'chat', 'data-test': 'group' }, ...children);
}

// ---- shell ------------------------------------------------------------------------------

function Main(props: { session: WebSession }): JSX.Element {
  const link = invitationFromLocation();
  const [view, setView] = useState<View>(link !== undefined ? { name: 'accept', text: link } : { name: 'chats' });
  const tick = useClientTick(props.session);
  const { value: requestCount } = useLoad(async () => (await props.session.client.requests()).length, [tick]);
  useEffect(() => {
    const onHash = () => {
      const text = invitationFromLocation();
      if (text !== undefined) setView({ name: 'accept', text });
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const go = (v: View) => setView(v);
  const tab = (name: View['name'], label: string, extra?: JSX.Element | null) =>
    h('button', { class: view.name === name ? 'tab active' : 'tab', onClick: () => go({ name } as View), 'data-test': `tab-${name}` }, label, extra ?? null);
  let body: JSX.Element;
  switch (view.name) {
    case 'chats':
      body = h(ChatList, { session: props.session, go, tick });
      break;
    case 'chat':
      body = h(Chat, { session: props.session, id: view.id, go, tick });
      break;
    case 'safety':
      body = h(Safety, { session: props.session, id: view.id, go });
      break;
    case 'requests':
      body = h(Requests, { session: props.session, go, tick });
      break;
    case 'invite':
      body = h(Invite, { session: props.session });
      break;
    case 'accept':
      body = h(Accept, { session: props.session, ...(view.text !== undefined ? { initial: view.text } : {}), go, key: view.text ?? '' });
      break;
    case 'groups':
      body = h(Groups, { session: props.session, go, tick });
      break;
    case 'group':
      body = h(Group, { session: props.session, chatId: view.chatId, go, tick });
      break;
    case 'new-group':
      body = h(NewGroup, { session: props.session, go });
      break;
  }
  return h(
    'div',
    { class: 'shell' },
    h(
      'nav',
      { class: 'tabs' },
      tab('chats', 'Chats'),
      tab('requests', 'Requests', requestCount ? h('span', { class: 'badge', 'data-test': 'request-count' }, String(requestCount)) : null),
      tab('groups', 'Groups'),
      tab('invite', 'Invite'),
      tab('accept', 'Accept'),
    ),
    h('main', null, body),
    h('footer', { class: 'muted' }, `Signed in as ${props.session.client.profile.name}`),
  );
}

export function App(): JSX.Element {
  const [hub, setHub] = useState<HubConfig | null>(null);
  const [exists, setExists] = useState<boolean | null>(null);
  const [session, setSession] = useState<WebSession | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    Promise.all([loadHubConfig(), WebSession.exists()]).then(
      ([h, e]) => {
        setHub(h);
        setExists(e);
      },
      (e: unknown) => setError(explain(e).message),
    );
  }, []);
  useEffect(() => {
    if (session === null) return;
    const close = () => void session.close();
    addEventListener('pagehide', close);
    return () => removeEventListener('pagehide', close);
  }, [session]);
  if (error !== null) return h('div', { class: 'card gate' }, h('h1', null, 'Umbra'), h(ErrorLine, { message: error }));
  if (hub === null || exists === null) return h('p', { class: 'muted gate', 'data-test': 'loading' }, 'Loading…');
  if (session === null) return h(Gate, { hub, exists, onOpen: setSession });
  return h(Main, { session });
}
