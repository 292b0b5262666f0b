/**
 * Looking inside a running backend process from a test: its Prometheus metrics (fetched with an edge signature,
 * as the worker would) and the resident memory of its process group (Linux /proc).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { signRequest } from '../../../shared/src/signing.ts';

/** `GET <backend>/metrics`, signed with the shared HMAC secret. */
export async function scrapeMetrics(baseUrl: string, hmacSecret: string): Promise<string> {
  const headers = await signRequest(hmacSecret, { method: 'GET', path: '/metrics', body: '' });
  const res = await fetch(`${baseUrl}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`GET ${baseUrl}/metrics → ${res.status}: ${await res.text()}`);
  return res.text();
}

/** The value of one sample, e.g. `metric(text, 'realign_running_sequences', { model: 'tiny' })`; 0 when absent. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

/** Resident memory (bytes) of every process in the process group `pgid` (a backend and its re-exec'd child). */
export function groupRssBytes(pgid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // fields after the command name (which may hold spaces) start after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      total += Number(fields[21]) * 4096;
    } catch {
      // the process exited while we looked
    }
  }
  return total;
}
