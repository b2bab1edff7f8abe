/**
 * Training output in a real terminal: `simclr train` runs in a tmux pane of 80 columns (a pseudo-terminal with a
 * real terminal emulator behind it), and the test reads the screen as a person would see it. The status line fits
 * the width with lr, images/s and the ETA on it, lines printed while it runs stay where they were, a finished or
 * interrupted run ends on a clean line, and Ctrl-C leaves no half-drawn line or stray "^C".
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { statusLine, formatDuration, formatLr } from '../src/train/progress';
import { describeWithTool, findTool } from './helpers/tools';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const tmux = findTool(['tmux'], ['-V']);
const WIDTH = 80;

/**
 * One tmux server of our own (its own socket), whose pane stays readable after its program exits. The program runs
 * under `sh`, which writes its exit status to a file (tmux does not learn it when started without a controlling
 * terminal, as under jest); the shell's own Ctrl-C trap only waits for the program.
 */
class Pane {
  private readonly socket = `simclr-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  private readonly config: string;
  private readonly statusFile: string;

  constructor(command: string[], dir: string) {
    this.config = path.join(dir, 'tmux.conf');
    this.statusFile = path.join(dir, 'exit-status');
    fs.writeFileSync(this.config, 'set -g remain-on-exit on\nset -g history-limit 5000\nset -g status off\n');
    const quote = (part: string) => `'${part.replace(/'/g, `'\\''`)}'`;
    const script = `trap true INT; ${command.map(quote).join(' ')}; echo $? > ${quote(this.statusFile)}`;
    this.tmux('new-session', '-d', '-x', String(WIDTH), '-y', '40', `exec sh -c ${quote(script)}`);
  }

  tmux(...args: string[]): string {
    const run = spawnSync('tmux', ['-L', this.socket, '-f', this.config, ...args], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  }

  /** The screen and its scrollback, one entry per row (wrapped rows joined, so an overlong line shows as one). */
  lines(): string[] {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-').replace(/\n+$/, '').split('\n').map((l) => l.trimEnd())
      .filter((l) => !l.startsWith('Pane is dead'));
  }

  /** The program's exit status once it has ended, else undefined. */
  exitStatus(): number | undefined {
    const text = fs.existsSync(this.statusFile) ? fs.readFileSync(this.statusFile, 'utf8').trim() : '';
    return text === '' ? undefined : Number(text);
  }

  async waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 120_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${this.lines().join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  close(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}

const train = (out: string, extra: string[]) => [process.execPath, CLI, 'train', '--data', 'fashion-mnist', '--subset', '256',
  '--batch-size', '16', '--base-size', '16', '--image-size', '16', '--knn-every', '0', '--workers', '1', '--out', out, ...extra];
const STATUS = /^train (\[[#.]+\] )?\d+\/\d+ \|/;

describe('the status line', () => {
  const fields = [
    { text: 'epoch 3/10', keep: 1 }, { text: 'loss 4.1234', keep: 6 }, { text: 'lr 0.06', keep: 3 },
    { text: '115.3 img/s', keep: 4 }, { text: 'ETA 12m03s', keep: 5 },
  ];

  it('shows every field and a bar when the terminal is wide', () => {
    const line = statusLine(119, 40, 160, fields);
    expect(line).toHaveLength(119);
    expect(line).toMatch(/^train \[#+\.+\] 40\/160 \| epoch 3\/10 \| loss 4\.1234 \| lr 0\.06 \| 115\.3 img\/s \| ETA 12m03s$/);
  });

  it('at 80 columns (77 cells: room is kept for an echoed ^C) drops the epoch first and keeps the bar, lr, images/s and ETA', () => {
    const line = statusLine(77, 40, 160, fields);
    expect(line).toHaveLength(77);
    expect(line).toMatch(/^train \[#+\.+\] 40\/160 \| loss 4\.1234 \| lr 0\.06 \| 115\.3 img\/s \| ETA 12m03s$/);
  });

  it('drops fields by priority as the width shrinks: bar, lr, images/s, ETA, loss; the step count stays', () => {
    const expected = [
      'train 40/160 | loss 4.1234 | lr 0.06 | 115.3 img/s | ETA 12m03s',
      'train 40/160 | loss 4.1234 | 115.3 img/s | ETA 12m03s',
      'train 40/160 | loss 4.1234 | ETA 12m03s',
      'train 40/160 | loss 4.1234',
      'train 40/160',
    ];
    // Each width is one cell short of the line before: that line no longer fits, the next one does.
    const widths = [expected[0].length, ...expected.slice(0, -1).map((line) => line.length - 1)];
    expect(widths.map((width) => statusLine(width, 40, 160, fields))).toEqual(expected);
  });

  it('formats durations and learning rates compactly', () => {
    expect([formatDuration(45), formatDuration(723), formatDuration(11220), formatDuration(NaN)]).toEqual(['45s', '12m03s', '3h07m', '?']);
    expect([formatLr(0.06), formatLr(0.3), formatLr(1.2e-4), formatLr(0)]).toEqual(['0.06', '0.3', '1.20e-4', '0']);
  });
});

describeWithTool('simclr train in an 80-column terminal (tmux)', 'tmux', tmux, () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-tty-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('fits the status line with lr, img/s and ETA, keeps the epoch lines, and ends on a clean line', async () => {
    const pane = new Pane(train(path.join(dir, 'run'), ['--epochs', '2']), dir);
    try {
      const running = await pane.waitFor(() => pane.lines().find((l) => STATUS.test(l) && l.includes('ETA')), 'a status line with an ETA');
      expect(running.length).toBeLessThan(WIDTH);
      expect(running).toMatch(/ \| loss \d+\.\d{4} \| lr [\d.e-]+ \| [\d.]+ img\/s \| ETA /);
      expect(await pane.waitFor(() => pane.exitStatus(), 'the end of the run')).toBe(0);
      const screen = pane.lines();
      for (const line of screen) expect(line.length).toBeLessThan(WIDTH);
      const at = (pattern: RegExp) => screen.findIndex((l) => pattern.test(l));
      const epoch1 = at(/^epoch 1\/2: loss \d+\.\d{4} in \d+ s$/);
      const epoch2 = at(/^epoch 2\/2: loss \d+\.\d{4} in \d+ s$/);
      const final = at(/^train \[#+\] 32\/32 \| .*loss .* \| \d+(\.\d+)?s$|^train \[#+\] 32\/32 \| .*\d+m\d\ds$/);
      const summary = at(/^\{$/);
      expect([epoch1, epoch2, final, summary].every((i) => i >= 0)).toBe(true);
      expect(epoch1).toBeLessThan(epoch2);
      expect(epoch2).toBeLessThan(final);
      expect(final).toBeLessThan(summary);
      // One status line is left, the final one: every redraw went over the same row.
      expect(screen.filter((l) => STATUS.test(l))).toHaveLength(1);
      expect(JSON.parse(screen.slice(summary).join('\n'))).toMatchObject({ steps: 32, interrupted: false });
    } finally {
      pane.close();
    }
  });

  it('Ctrl-C prints the stop notice on its own line, saves, and leaves no stray ^C or half-drawn line', async () => {
    const pane = new Pane(train(path.join(dir, 'run'), ['--epochs', '100']), dir);
    try {
      await pane.waitFor(() => pane.lines().find((l) => STATUS.test(l) && l.includes('ETA')), 'a status line with an ETA');
      pane.tmux('send-keys', 'C-c');
      expect(await pane.waitFor(() => pane.exitStatus(), 'the end of the run')).toBe(130);
      const screen = pane.lines();
      const notice = screen.indexOf('simclr: stopping after this step to save last.ckpt (Ctrl-C again: quit now)');
      expect(notice).toBeGreaterThanOrEqual(0);
      const status = screen.findIndex((l) => STATUS.test(l));
      expect(status).toBeGreaterThan(notice);
      expect(screen.filter((l) => l.includes('^C'))).toEqual([]);
      for (const line of screen) expect(line.length).toBeLessThan(WIDTH);
      const summary = screen.indexOf('{');
      expect(summary).toBeGreaterThan(status);
      expect(JSON.parse(screen.slice(summary).join('\n'))).toMatchObject({ interrupted: true });
      expect(fs.existsSync(path.join(dir, 'run', 'last.ckpt'))).toBe(true);
    } finally {
      pane.close();
    }
  });
});
