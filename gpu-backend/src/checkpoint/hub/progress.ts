/**
 * Download progress on stderr: a redrawn bar on a terminal, one line per file otherwise (logs, CI, npm start).
 * REALIGN_PROGRESS=bar|lines|off chooses, as for realign's other progress output.
 */
import type { DownloadEvent } from './download.ts';

/** `1234567` → `1.2 MB`. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
}

/** How progress shows: REALIGN_PROGRESS when set (`bar`/`1`, `lines`, `off`/`0`), else a bar on a terminal. */
export function reporterMode(out: Out, env: NodeJS.ProcessEnv = process.env): 'bar' | 'lines' | 'off' {
  const v = env.REALIGN_PROGRESS;
  if (v === 'bar' || v === '1') return 'bar';
  if (v === 'lines' || v === 'off') return v;
  if (v === '0') return 'off';
  return out.isTTY === true ? 'bar' : 'lines';
}

/**
 * A progress callback for `resolveModelSource`: in `bar` mode one line redrawn at most 10 times a second, in `lines`
 * mode a line per finished file; both say what is downloaded where, and when it is done.
 */
export function downloadReporter(out: Out = process.stderr, mode = reporterMode(out)): (e: DownloadEvent) => void {
  const bar = mode === 'bar';
  let id = '';
  let started = Date.now();
  let lastDraw = 0;
  let drawn = false;
  const endBar = () => {
    if (drawn) out.write('\n');
    drawn = false;
  };
  return (e) => {
    if (mode === 'off') return;
    switch (e.type) {
      case 'plan': {
        id = e.id;
        started = Date.now();
        const todo = e.files.filter((f) => !f.present).length;
        const cached = e.presentBytes > 0 ? `, ${formatBytes(e.presentBytes)} already cached` : '';
        out.write(
          `realign: downloading ${e.id} (${e.commit.slice(0, 12)}): ${todo} of ${e.files.length} files, ${formatBytes(e.totalBytes - e.presentBytes)}${cached}, into ${e.dir}\n`,
        );
        break;
      }
      case 'bytes': {
        const now = Date.now();
        if (!bar || (now - lastDraw < 100 && e.fileBytes < e.fileSize)) break;
        lastDraw = now;
        const frac = e.totalBytes > 0 ? e.doneBytes / e.totalBytes : 1;
        const width = 30;
        const rate = e.doneBytes / Math.max(0.001, (now - started) / 1000);
        const line = `  [${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatBytes(e.doneBytes)} / ${formatBytes(e.totalBytes)}  ${formatBytes(rate)}/s  ${e.path}`;
        out.write(`\r${line.padEnd(100)}`);
        drawn = true;
        break;
      }
      case 'file':
        if (!bar) out.write(`realign: ${id}: ${e.path} (${formatBytes(e.size)}) ${e.done}/${e.count}\n`);
        break;
      case 'done':
        endBar();
        out.write(`realign: ${e.id}: ${formatBytes(e.downloadedBytes)} in ${e.seconds.toFixed(1)} s\n`);
        break;
      case 'note':
        endBar();
        out.write(`realign: ${e.message}\n`);
        break;
    }
  };
}
