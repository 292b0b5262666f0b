/**
 * Child processes of the local system: start, wait until ready, stop (the whole process group). Every child
 * started here is recorded until it exits, so that whoever owns the system can stop all of them at once — on a
 * signal, on a crash, or synchronously as the process exits.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';

/** A free TCP port on loopback (or `preferred` when it is free). */
export async function freePort(preferred = 0): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | null>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(null));
      s.listen(port, '127.0.0.1', () => {
        const got = (s.address() as { port: number }).port;
        s.close(() => resolve(got));
      });
    });
  if (preferred > 0) {
    const p = await tryPort(preferred);
    if (p !== null) return p;
  }
  return (await tryPort(0))!;
}

/** How a child ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running child and how to stop it. */
export interface Proc {
  name: string;
  child: ChildProcess;
  /** resolves when the child has exited (also when it already had) */
  exited: Promise<Exit>;
  /** output so far (the last 64 KB, for error messages) */
  output(): string;
  /** the file its whole output goes to, when one was given */
  logFile?: string;
  /** SIGTERM (or `signal`) to its process group; SIGKILL after `forceMs` */
  stop(signal?: NodeJS.Signals, forceMs?: number): Promise<void>;
}

/** The children started here that have not exited yet. */
const live = new Set<Proc>();

/** The last `lines` lines of a child's output. */
export function lastLines(proc: Proc, lines = 30): string {
  return proc.output().trimEnd().split('\n').slice(-lines).join('\n');
}

/** Options of `start`. */
export interface StartOptions extends SpawnOptions {
  /** copy the child's output to this process's stderr */
  echo?: boolean;
  /** write the child's whole output to this file (truncated first) */
  logFile?: string;
}

/** Spawns a command in its own process group, keeping the last 64 KB of its output. */
export function start(name: string, cmd: string, args: string[], opts: StartOptions = {}): Proc {
  const { echo, logFile, ...spawnOpts } = opts;
  const child = spawn(cmd, args, { ...spawnOpts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const log: WriteStream | null = logFile ? createWriteStream(logFile) : null;
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-65536);
    log?.write(b);
    if (echo) process.stderr.write(b);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<Exit>((resolve) => {
    // 'close' comes after the output streams have ended, so output() is complete by then
    child.once('close', (code, signal) => {
      log?.end();
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      keep(Buffer.from(`${name}: ${err.message}\n`));
      log?.end();
      resolve({ code: null, signal: null });
    });
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        // gone
      }
    }
  };
  const proc: Proc = {
    name,
    child,
    exited,
    logFile,
    output: () => out,
    async stop(signal = 'SIGTERM', forceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        signalGroup(signal);
        const force = setTimeout(() => signalGroup('SIGKILL'), forceMs);
        await exited;
        clearTimeout(force);
      }
      // what the group's leader left behind (workerd under wrangler, say) goes with it
      signalGroup('SIGKILL');
    },
  };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}

/** Stops every child started here that is still running (SIGTERM, SIGKILL after `forceMs`). */
export async function stopAll(forceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop('SIGTERM', forceMs)));
}

/** SIGKILLs every child's process group at once (synchronous: for `process.on('exit')`). */
export function killAllNow(): void {
  for (const p of live) {
    try {
      process.kill(-p.child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Polls `url` until it answers 2xx; fails early when `proc` exits or when `check` throws on an answer (a
 * readiness body that says the wait is hopeless).
 */
export async function waitReady(url: string, timeoutMs: number, proc?: Proc, check?: (body: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      await proc.exited;
      throw new Error(
        `${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${url} was ready:\n${proc.output().slice(-4000)}`,
      );
    }
    let body: string | null = null;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      body = await r.text();
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (body !== null) check?.(body);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} was not ready after ${timeoutMs} ms${proc ? `:\n${proc.output().slice(-4000)}` : ''}`);
}

/** Runs a command to completion (recorded like `start`'s children); rejects with its output when it fails. */
export async function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<string> {
  const proc = start(`${cmd} ${args.join(' ')}`, cmd, args, opts);
  const { code, signal } = await proc.exited;
  if (code === 0) return proc.output();
  throw new Error(`${proc.name} exited with ${code ?? signal}:\n${proc.output().slice(-4000)}`);
}
