/**
 * `npm start` as a user runs it, for the start-*.test.ts files: spawned through npm in the repository, with the
 * caches and the state in temporary folders and random ports; its output collected; the banner's export line and
 * dev.json read back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { freePort } from '../../../scripts/lib/procs.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

/** A running (or ended) `npm start`. */
export interface NpmStart {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** resolves with the exit code (or the signal) once npm has exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  edgePort: number;
  backendPort: number;
  stateDir: string;
}

/** Starts `npm start -- <args> --port <free> --backend-port <free> --state-dir <stateDir>` with REALIGN_CACHE=cache. */
export async function npmStart(args: string[], dirs: { cache: string; state: string }): Promise<NpmStart> {
  const edgePort = await freePort();
  const backendPort = await freePort();
  const startedAt = Date.now();
  const child = spawn(
    'npm',
    [
      'start',
      '--',
      ...args,
      '--port',
      String(edgePort),
      '--backend-port',
      String(backendPort),
      '--state-dir',
      dirs.state,
      '--device',
      'cpu',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, REALIGN_CACHE: dirs.cache, REALIGN_GRAPH_CACHE: '', XDG_CACHE_HOME: join(dirs.cache, 'xdg') },
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group, as a shell job is: a terminal's hang-up (or Ctrl-C) signals the whole group
      detached: true,
    },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (err += b));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((res) =>
    child.once('close', (code, signal) => res({ code, signal, ms: Date.now() - startedAt })),
  );
  return { child, stdout: () => out, stderr: () => err, exited, edgePort, backendPort, stateDir: dirs.state };
}

/** Waits for the "realign is running" banner; throws with the output when npm start ends first or takes too long. */
export async function waitRunning(s: NpmStart, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void s.exited.then(() => (ended = true));
  while (!/realign is running[\s\S]*Ctrl-C stops everything/.test(s.stdout())) {
    if (ended || Date.now() > deadline)
      throw new Error(`npm start did not come up (${ended ? 'it exited' : 'timeout'}):\n${s.stdout()}\n${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The variables of the banner's `export …` line. */
export function bannerExports(s: NpmStart): Record<string, string> {
  const line = s
    .stdout()
    .split('\n')
    .find((l) => l.trim().startsWith('export EDGE='));
  if (!line) throw new Error(`no export line in:\n${s.stdout()}`);
  return Object.fromEntries(
    line
      .trim()
      .replace(/^export /, '')
      .split(' ')
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** What npm start wrote to <state dir>/dev.json. */
export function devJson(s: NpmStart): {
  pids: { npmStart: number; backend: number; wrangler: number };
  logs: string[];
  adminToken: string;
  backendToken: string;
} {
  const file = join(s.stateDir, 'dev.json');
  if (!existsSync(file)) throw new Error(`no ${file}`);
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Whether a process exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      res(true);
    });
    sock.once('error', () => res(false));
  });
}

/** Polls `cond` until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return cond();
}

/** Pids of the processes whose command line mentions `text` (e.g. a state folder only one start uses). */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
