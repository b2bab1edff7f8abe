/**
 * Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3, replies
 * and events on fd 4, each a JSON message ended by a NUL byte), so a test can open a page, see its console, evaluate
 * script in it and take a screenshot without any browser-automation package.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Readable, Writable } from 'stream';

/** The flags every launch uses: headless, no sandbox (root in CI), nothing fetched or synced in the background. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--remote-debugging-pipe'];

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

/** The fields of the DevTools events read here. */
interface EventParams {
  type?: string;
  args?: { value?: unknown; description?: string }[];
  exceptionDetails?: { text?: string; exception?: { description?: string } };
  entry?: { level?: string; source?: string; text?: string; url?: string };
}

/** What the page reported while it was open: console errors and warnings, uncaught exceptions, error log entries. */
export interface PageProblems {
  console: string[];
  exceptions: string[];
  log: string[];
}

export class Chromium {
  private readonly process: ChildProcess;
  private readonly profile: string;
  private readonly pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((m: Message) => void)[] = [];
  private nextId = 1;
  private buffer = '';

  private constructor(binary: string) {
    this.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-chromium-'));
    this.process = spawn(binary, [...FLAGS, `--user-data-dir=${this.profile}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    const incoming = this.process.stdio[4] as Readable;
    incoming.setEncoding('utf8');
    incoming.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let end = this.buffer.indexOf('\0'); end >= 0; end = this.buffer.indexOf('\0')) {
        const message = JSON.parse(this.buffer.slice(0, end)) as Message;
        this.buffer = this.buffer.slice(end + 1);
        if (message.id !== undefined && this.pending.has(message.id)) {
          const waiter = this.pending.get(message.id)!;
          this.pending.delete(message.id);
          if (message.error) waiter.reject(new Error(`DevTools: ${message.error.message}`));
          else waiter.resolve(message);
        } else {
          for (const listener of this.listeners) listener(message);
        }
      }
    });
    this.process.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`chromium exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  static async launch(binary: string): Promise<Chromium> {
    const browser = new Chromium(binary);
    await browser.send('Browser.getVersion');
    return browser;
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const message = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: (m) => resolve(m.result ?? {}), reject });
      (this.process.stdio[3] as Writable).write(`${message}\0`);
    });
  }

  /**
   * Opens `url` in a new page of `width` x `height` CSS pixels and waits for its load event. Returns the page's
   * session, the problems it reports (filled in as they happen) and helpers to evaluate script and take screenshots.
   */
  async open(url: string, width: number, height: number): Promise<{
    problems: PageProblems;
    evaluate: <T>(expression: string) => Promise<T>;
    screenshot: () => Promise<Buffer>;
  }> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const problems: PageProblems = { console: [], exceptions: [], log: [] };
    let loaded: () => void = () => undefined;
    const load = new Promise<void>((resolve) => (loaded = resolve));
    this.listeners.push((m) => {
      if (m.sessionId !== sessionId || !m.params) return;
      const p = m.params as EventParams;
      if (m.method === 'Runtime.consoleAPICalled' && ['error', 'warning', 'assert'].includes(p.type ?? '')) {
        problems.console.push(`${p.type}: ${(p.args ?? []).map((a) => a.value ?? a.description).join(' ')}`);
      } else if (m.method === 'Runtime.exceptionThrown') {
        problems.exceptions.push(p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text ?? 'an exception');
      } else if (m.method === 'Log.entryAdded' && p.entry?.level === 'error') {
        problems.log.push(`${p.entry.source}: ${p.entry.text} ${p.entry.url ?? ''}`);
      } else if (m.method === 'Page.loadEventFired') {
        loaded();
      }
    });
    for (const domain of ['Runtime', 'Log', 'Page']) await this.send(`${domain}.enable`, {}, sessionId);
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    await this.send('Page.navigate', { url }, sessionId);
    await load;
    return {
      problems,
      evaluate: async <T>(expression: string) => {
        const reply = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId)) as {
          result: { value: T }; exceptionDetails?: { text: string };
        };
        if (reply.exceptionDetails) throw new Error(`evaluate: ${reply.exceptionDetails.text}`);
        return reply.result.value;
      },
      screenshot: async () => {
        const { data } = (await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId)) as { data: string };
        return Buffer.from(data, 'base64');
      },
    };
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.send('Browser.close').catch(() => undefined);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
