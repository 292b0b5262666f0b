/** Starting the real backend (and the worker under wrangler dev) as separate processes for serving benchmarks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200 (or throws after `timeoutMs`). */
export async function waitFor(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms`);
}

/** A child process and how to stop it. */
export interface Proc {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    });
}

/** Starts `realign serve` on a config written to `dir`; resolves when /readyz says ready. */
export async function startBackendProcess(dir: string, models: unknown[], token: string, extraEnv: Record<string, string> = {}): Promise<Proc> {
  const port = await freePort();
  const config = join(dir, `models-${port}.json`);
  writeFileSync(config, JSON.stringify({ models, graph_cache: join(dir, 'graphs'), shutdown_grace_ms: 2000 }));
  const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/realign.js'), 'serve', '--config', config, '--port', String(port)], {
    env: { ...process.env, REALIGN_API_TOKENS: token, ...extraEnv },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`, 600_000, child);
  return { url, child, stop: stopper(child) };
}
