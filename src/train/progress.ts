/**
 * Training feedback: on a terminal, one status line (bar, steps, epoch, loss, lr, images/s, ETA) redrawn in place and
 * fitted to the terminal's width; plain lines otherwise. The line is only ever rewritten from its start (carriage
 * return, erase to end of line), never by moving the cursor elsewhere, so lines printed above it (epoch summaries, a
 * stop notice) stay where they are, and a finished or interrupted run leaves the cursor on a fresh line.
 */

export interface ProgressValues {
  loss: number;
  lr: number;
  imagesPerSecond: number;
  /** 1-based. */
  epoch: number;
  epochs: number;
}

/** Where the status line goes: process.stderr, or a stream-like stand-in (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Width assumed when a terminal does not report one. */
const DEFAULT_COLUMNS = 80;
/** The bar is left out when fewer cells than this remain for it. */
const MIN_BAR = 10;
/** Redraws at most this often (ms), except the last one. */
const REDRAW_MS = 100;
/** Plain mode prints at most one line this often (ms), plus the first and the last step. */
const PLAIN_MS = 10_000;

/** 45s, 12m03s, 3h07m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One field of the status line; fields with the lowest `keep` are dropped first when the line does not fit. */
export interface StatusField {
  text: string;
  keep: number;
}

/** How long the bar stays on the line: it goes after the epoch field, before lr, images/s, ETA and loss. */
const BAR_KEEP = 2;

/**
 * The status line for `width` cells: `train`, a bar, `step/total` and the fields that fit. When the line is too long
 * the field (or the bar, which needs at least {@link MIN_BAR} cells) with the lowest `keep` goes first; the step count
 * always stays. The bar takes whatever room is left.
 */
export function statusLine(width: number, step: number, total: number, fields: readonly StatusField[]): string {
  const prefix = 'train ';
  const counter = `${step}/${total}`;
  const kept = [...fields];
  let withBar = true;
  const length = () => prefix.length + [counter, ...kept.map((f) => f.text)].join(' | ').length + (withBar ? MIN_BAR + 3 : 0);
  while (length() > width && (kept.length > 0 || withBar)) {
    const lowest = kept.reduce((low, f, i) => (low < 0 || f.keep < kept[low].keep ? i : low), -1);
    if (withBar && (lowest < 0 || BAR_KEEP < kept[lowest].keep)) withBar = false;
    else kept.splice(lowest, 1);
  }
  const text = [counter, ...kept.map((f) => f.text)].join(' | ');
  if (!withBar) return (prefix + text).slice(0, Math.max(0, width));
  const room = width - prefix.length - text.length - 3; // "[" + bar + "] "
  const filled = Math.round((room * Math.min(step, total)) / Math.max(1, total));
  return `${prefix}[${'#'.repeat(filled)}${'.'.repeat(room - filled)}] ${text}`;
}

/** 0.06, 0.3, 1.20e-4: three significant digits, exponent only for small rates. */
export function formatLr(lr: number): string {
  if (lr === 0 || !Number.isFinite(lr)) return String(lr);
  return Math.abs(lr) >= 1e-3 ? String(Number(lr.toPrecision(3))) : lr.toExponential(2);
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly bar: boolean;
  private readonly plain: boolean;
  private readonly started = Date.now();
  private readonly startStep: number;
  private lastDraw = 0;
  private lastPlain = 0;
  private step: number;
  private values: ProgressValues | undefined;
  /** True while the status line is on screen and the cursor sits at its end. */
  private lineShown = false;
  private readonly onExit = () => this.finishLine();

  constructor(mode: 'auto' | 'plain' | 'none', private readonly total: number, start: number, stream: ProgressStream = process.stderr) {
    this.stream = stream;
    const tty = Boolean(stream.isTTY);
    this.plain = mode === 'plain' || (mode === 'auto' && !tty);
    this.bar = mode !== 'none' && !this.plain;
    this.step = start;
    this.startStep = start;
    // A process that exits mid-run (a second Ctrl-C) still ends the status line, so the shell prompt starts clean.
    if (this.bar) process.once('exit', this.onExit);
  }

  update(step: number, values: ProgressValues): void {
    this.step = step;
    this.values = values;
    if (this.bar) {
      const now = Date.now();
      if (now - this.lastDraw >= REDRAW_MS || step >= this.total) this.draw(now);
    } else if (this.plain && (Date.now() - this.lastPlain > PLAIN_MS || step === this.total || step === this.startStep + 1)) {
      this.lastPlain = Date.now();
      const v = values;
      this.stream.write(`step ${step}/${this.total} epoch ${v.epoch}/${v.epochs} loss ${v.loss.toFixed(4)} lr ${formatLr(v.lr)} ` +
        `${v.imagesPerSecond.toFixed(1)} img/s ETA ${formatDuration(this.eta())}\n`);
    }
  }

  /** A line that stays above the status line (in plain mode: just the line). */
  log(line: string): void {
    if (this.bar) {
      this.stream.write(`\r\x1b[K${line}\n`);
      this.lineShown = false;
      if (this.values) this.draw(Date.now());
    } else if (this.plain) {
      this.stream.write(`${line}\n`);
    }
  }

  /** A warning: above the status line when there is one, else on stderr, whatever the mode (even 'none'). */
  warn(line: string): void {
    if (this.bar) this.log(line);
    else console.warn(line);
  }

  /** Draws the final state of the status line (elapsed time in place of the ETA) and moves to a fresh line. */
  stop(): void {
    if (!this.bar) return;
    process.removeListener('exit', this.onExit);
    if (this.values) this.draw(Date.now(), true);
    this.finishLine();
  }

  private finishLine(): void {
    if (this.lineShown) this.stream.write('\n');
    this.lineShown = false;
  }

  private eta(): number {
    const done = this.step - this.startStep;
    if (done <= 0) return NaN;
    return ((Date.now() - this.started) / 1000 / done) * (this.total - this.step);
  }

  private draw(now: number, final = false): void {
    const v = this.values!;
    // Three cells stay free: the terminal echoes Ctrl-C as "^C" after the line, and the last cell wraps on some
    // terminals; so the echo lands on this row and the next redraw or log line erases it.
    const width = Math.max(20, (this.stream.columns || DEFAULT_COLUMNS) - 3);
    const time = final ? `${formatDuration((now - this.started) / 1000)}` : `ETA ${formatDuration(this.eta())}`;
    const fields: StatusField[] = [
      { text: `epoch ${v.epoch}/${v.epochs}`, keep: 1 },
      { text: `loss ${v.loss.toFixed(4)}`, keep: 6 },
      { text: `lr ${formatLr(v.lr)}`, keep: 3 },
      { text: `${v.imagesPerSecond.toFixed(1)} img/s`, keep: 4 },
      { text: time, keep: 5 },
    ];
    this.stream.write(`\r${statusLine(width, this.step, this.total, fields)}\x1b[K`);
    this.lineShown = true;
    this.lastDraw = now;
  }
}
