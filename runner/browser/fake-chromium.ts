/**
 * Tests only: a browser-level CDP peer that behaves like Chromium where the relay relies on it
 * (per-session state, flattened sessions, attachedToTarget before the attach reply, detaching a
 * session detaches its children), and records everything it was sent.
 */
import type { CdpConnection, CdpUpstream } from './cdp-connection.ts';

interface Sent {
  id: number;
  method: string;
  params: Record<string, unknown>;
  sessionId?: string;
}

export class FakeChromium implements CdpUpstream {
  readonly sent: Sent[] = [];
  /** sessionId → parent sessionId ('' for the root). */
  readonly sessions = new Map<string, string>();
  /** What Storage.getCookies answers. */
  cookies: Array<{ name: string; value: string }> = [];
  private readonly discovering = new Set<string>();
  private readonly targets = new Map<
    string,
    { targetId: string; type: string; url: string; title: string }
  >();
  private nextSession = 1;
  private nextTarget = 1;
  private listeners: Array<(message: string) => void> = [];
  private closeListeners: Array<(why: Error | undefined) => void> = [];
  private isClosed = false;

  constructor() {
    this.addTarget('about:blank');
  }

  async open(): Promise<CdpConnection> {
    const browser = this;
    return {
      send: (message) => this.receive(message),
      onMessage: (listener) => this.listeners.push(listener),
      onClose: (listener) => (this.isClosed ? listener(undefined) : this.closeListeners.push(listener)),
      close: () => this.crash(),
      get closed() {
        return browser.isClosed;
      },
    };
  }

  /** The browser goes away. */
  crash(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const listener of this.closeListeners.splice(0)) listener(undefined);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** An event on a session (or the root, sessionId ''). */
  emit(sessionId: string, method: string, params: Record<string, unknown> = {}): void {
    this.out({ method, params, ...(sessionId ? { sessionId } : {}) });
  }

  addTarget(url: string): string {
    const targetId = `T${this.nextTarget++}`;
    const info = { targetId, type: 'page', url, title: url };
    this.targets.set(targetId, info);
    for (const session of this.discovering) this.emit(session, 'Target.targetCreated', { targetInfo: info });
    return targetId;
  }

  methods(method: string): Sent[] {
    return this.sent.filter((message) => message.method === method);
  }

  private out(message: unknown): void {
    const text = JSON.stringify(message);
    for (const listener of this.listeners) listener(text);
  }

  private receive(text: string): void {
    if (this.isClosed) return;
    const message = JSON.parse(text) as Sent;
    this.sent.push(message);
    const session = message.sessionId ?? '';
    const reply = (result: unknown) =>
      this.out({ id: message.id, result, ...(session ? { sessionId: session } : {}) });
    const fail = (text: string) =>
      this.out({
        id: message.id,
        error: { code: -32000, message: text },
        ...(session ? { sessionId: session } : {}),
      });
    if (session && !this.sessions.has(session)) return void fail('Session with given id not found.');
    const params = message.params ?? {};
    switch (message.method) {
      case 'Browser.getVersion':
        return void reply({
          product: 'FakeChrome/1.0',
          protocolVersion: '1.3',
          userAgent: 'Fake',
          jsVersion: '1',
          revision: '@1',
        });
      case 'Target.setDiscoverTargets':
        if (params['discover']) {
          this.discovering.add(session);
          for (const info of this.targets.values())
            this.emit(session, 'Target.targetCreated', { targetInfo: info });
        } else this.discovering.delete(session);
        return void reply({});
      case 'Target.attachToBrowserTarget':
        return void reply({
          sessionId: this.attach(session, { targetId: 'browser', type: 'browser', url: '', title: '' }),
        });
      case 'Target.attachToTarget': {
        const target = this.targets.get(String(params['targetId']));
        if (!target) return void fail(`No target with given id found`);
        return void reply({ sessionId: this.attach(session, target) });
      }
      case 'Target.detachFromTarget': {
        const child = String(params['sessionId']);
        if (this.sessions.get(child) !== session) return void fail('No session with given id');
        this.detach(child);
        return void reply({});
      }
      case 'Target.createTarget':
        return void reply({ targetId: this.addTarget(String(params['url'])) });
      case 'Target.activateTarget':
      case 'Target.closeTarget':
        return void reply({});
      case 'Target.getTargets':
        return void reply({ targetInfos: [...this.targets.values()] });
      case 'Target.getBrowserContexts':
        return void reply({ browserContextIds: [] });
      case 'Storage.getCookies':
        return void reply({ cookies: this.cookies });
      case 'Test.echo':
        return void reply({ params, session });
      default:
        return void fail(`'${message.method}' wasn't found`);
    }
  }

  private attach(
    parent: string,
    target: { targetId: string; type: string; url: string; title: string },
  ): string {
    const sessionId = `S${this.nextSession++}`;
    this.sessions.set(sessionId, parent);
    this.emit(parent, 'Target.attachedToTarget', {
      sessionId,
      targetInfo: target,
      waitingForDebugger: false,
    });
    return sessionId;
  }

  private detach(sessionId: string): void {
    for (const [child, parent] of [...this.sessions]) if (parent === sessionId) this.detach(child);
    const parent = this.sessions.get(sessionId) ?? '';
    this.sessions.delete(sessionId);
    this.discovering.delete(sessionId);
    this.emit(parent, 'Target.detachedFromTarget', { sessionId });
  }
}
