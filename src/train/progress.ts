/** Training feedback: a progress bar (loss, lr, images/s, ETA) on a TTY, plain lines otherwise. */
import * as cliProgress from 'cli-progress';

export interface ProgressValues {
  loss: number;
  lr: number;
  imagesPerSecond: number;
  epoch: number;
}

export class Progress {
  private readonly bar?: cliProgress.SingleBar;
  private readonly plain: boolean;
  private lastPlain = 0;

  constructor(mode: 'auto' | 'plain' | 'none', private readonly total: number, start: number) {
    const tty = Boolean(process.stderr.isTTY);
    this.plain = mode === 'plain' || (mode === 'auto' && !tty);
    if (mode !== 'none' && !this.plain) {
      this.bar = new cliProgress.SingleBar({
        format: 'train |{bar}| {value}/{total} steps | epoch {epoch} | loss {loss} | lr {lr} | {ips} img/s | ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(total, start, { loss: '-', lr: '-', ips: '-', epoch: '-' });
    }
  }

  update(step: number, v: ProgressValues): void {
    if (this.bar) {
      this.bar.update(step, { loss: v.loss.toFixed(4), lr: v.lr.toExponential(2), ips: v.imagesPerSecond.toFixed(1), epoch: v.epoch + 1 });
    } else if (this.plain && (Date.now() - this.lastPlain > 10_000 || step === this.total || step === 1)) {
      this.lastPlain = Date.now();
      process.stderr.write(`step ${step}/${this.total} epoch ${v.epoch + 1} loss ${v.loss.toFixed(4)} lr ${v.lr.toExponential(2)} ${v.imagesPerSecond.toFixed(1)} img/s\n`);
    }
  }

  /** A line that stays above the bar. */
  log(line: string): void {
    if (this.bar) this.bar.updateETA();
    if (this.bar || this.plain) process.stderr.write(`${this.bar ? '\n' : ''}${line}\n`);
  }

  stop(): void {
    this.bar?.stop();
  }
}
