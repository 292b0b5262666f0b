/**
 * Training progress on stderr: a redrawn bar with step, loss, learning rate and tokens/s on a terminal, and a
 * plain line every `every` steps otherwise (logs, CI).
 */

/** One step's numbers. */
export interface StepReport {
  step: number;
  total: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** response tokens per second over the run so far */
  tokensPerSecond: number;
}

/** Renders step reports. */
export class TrainProgress {
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly write: (s: string) => void = (s) => process.stderr.write(s),
    tty = process.stderr.isTTY === true,
    private readonly every = 10,
  ) {
    this.tty = tty;
  }

  /** Reports a finished step. */
  update(r: StepReport): void {
    const line = `${this.label} step ${r.step}/${r.total} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)} |g| ${r.gradNorm.toFixed(3)} ${Math.round(r.tokensPerSecond)} tok/s`;
    const last = r.step >= r.total;
    if (this.tty) {
      const now = Date.now();
      if (!last && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Math.round((Math.min(r.step, r.total) / Math.max(1, r.total)) * width);
      this.write(`\r[${'#'.repeat(filled).padEnd(width, '.')}] ${line}\x1b[K${last ? '\n' : ''}`);
    } else if (r.step === 1 || last || r.step % this.every === 0) {
      this.write(`${line}\n`);
    }
  }

  /** A message between updates (on its own line). */
  note(msg: string): void {
    this.write(`${this.tty ? '\r\x1b[K' : ''}${this.label} ${msg}\n`);
  }
}
