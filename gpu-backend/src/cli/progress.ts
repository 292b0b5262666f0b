/**
 * Progress of long work on stderr: a redrawn bar on a terminal, one plain line per stage (and per quarter) in logs
 * and pipes. REALIGN_PROGRESS chooses: `bar`, `lines` or `off`; unset, a terminal gets the bar, anything else lines.
 */

/** How progress is shown. */
export type ProgressMode = 'bar' | 'lines' | 'off';

/** The mode for this process: REALIGN_PROGRESS when set, else a bar on a terminal and lines otherwise. */
export function progressMode(env: NodeJS.ProcessEnv = process.env, isTTY = process.stderr.isTTY === true): ProgressMode {
  const v = env.REALIGN_PROGRESS;
  if (v === 'bar' || v === '1') return 'bar';
  if (v === 'lines') return 'lines';
  if (v === 'off' || v === '0') return 'off';
  return isTTY ? 'bar' : 'lines';
}

/** One stage's progress: `update(done, total)` as work proceeds; the last call has done = total. */
export class ProgressBar {
  private last = 0;
  private quarter = -1;
  private readonly start = Date.now();

  constructor(
    private readonly label: string,
    private readonly mode: ProgressMode = progressMode(),
    private readonly write: (s: string) => void = (s) => process.stderr.write(s),
  ) {}

  /** Reports `done` of `total` units (a bar redraws at most 10 times a second; lines print at 0, 25, 50, 75 and 100%). */
  update(done: number, total: number): void {
    if (this.mode === 'off') return;
    const now = Date.now();
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const secs = ((now - this.start) / 1000).toFixed(1);
    if (this.mode === 'lines') {
      const q = Math.floor(frac * 4);
      if (q <= this.quarter) return;
      this.quarter = q;
      this.write(frac >= 1 ? `realign: ${this.label}: done in ${secs} s\n` : `realign: ${this.label}: ${q * 25}% (${secs} s)\n`);
      return;
    }
    if (done < total && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    this.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${secs}s`);
    if (done >= total) this.write('\n');
  }
}

/** A stage line on stderr (`realign: …`), shown in every mode but `off`. */
export function note(message: string, mode: ProgressMode = progressMode()): void {
  if (mode !== 'off') process.stderr.write(`realign: ${message}\n`);
}
