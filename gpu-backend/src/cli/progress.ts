/** A one-line progress bar on stderr (only when stderr is a terminal or REALIGN_PROGRESS=1). */
export class ProgressBar {
  private last = 0;
  private readonly enabled: boolean;
  private readonly start = Date.now();

  constructor(
    private readonly label: string,
    enabled = process.stderr.isTTY === true || process.env.REALIGN_PROGRESS === '1',
  ) {
    this.enabled = enabled;
  }

  /** Reports `done` of `total` units (redraws at most 10 times a second). */
  update(done: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done < total && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const secs = ((now - this.start) / 1000).toFixed(1);
    process.stderr.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${secs}s`);
    if (done >= total) process.stderr.write('\n');
  }
}
