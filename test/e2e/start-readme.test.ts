/**
 * README.md's commands against a running `npm start` (issue 15 item 7): every ```sh block that talks to the running
 * system ($EDGE, $BACKEND) runs as written under bash, with the variables of the banner's export line, and curl
 * failing on any HTTP error. The banner's admin token and metrics command work; Ctrl-C (SIGINT) stops everything.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, tempDir } from '../node/helpers/models.ts';
import { alive, bannerExports, devJson, eventually, npmStart, waitRunning, type NpmStart } from './helpers/start-process.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const exec = promisify(execFile);
let sys: NpmStart;
let vars: Record<string, string>;
let bin: string;

beforeAll(async () => {
  sys = await npmStart([], { cache: tempDir('realign-cache-'), state: join(tempDir('realign-start-'), 'state') });
  await waitRunning(sys);
  vars = bannerExports(sys);
  // curl as the README calls it, but failing on 4xx/5xx so that a command that "runs" but is refused fails here
  bin = tempDir('realign-bin-');
  const curl = execFileSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).trim();
  writeFileSync(join(bin, 'curl'), `#!/bin/sh\nexec ${curl} --fail-with-body --max-time 60 "$@"\n`);
  chmodSync(join(bin, 'curl'), 0o755);
}, 300_000);
afterAll(async () => {
  if (sys?.child.exitCode === null) sys.child.kill('SIGKILL');
  cleanupTempDirs();
});

/** The README's shell blocks that talk to the running system. */
function readmeBlocks(): string[] {
  const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...md.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => /\$\{?(EDGE|BACKEND)\b/.test(b));
}

const bash = (script: string) =>
  exec('bash', ['-euo', 'pipefail', '-c', script], {
    env: { ...process.env, ...vars, PATH: `${bin}:${process.env.PATH}` },
    timeout: 120_000,
  });

describe('README.md against npm start', () => {
  it('the banner prints the admin token, the backend token and a metrics command that works', async () => {
    const info = devJson(sys);
    expect(sys.stdout()).toContain(`admin token:        ${info.adminToken}`);
    expect(vars.ADMIN_TOKEN).toBe(info.adminToken);
    const metricsLine = sys
      .stdout()
      .split('\n')
      .find((l) => l.trim().startsWith('metrics:'))!;
    const { stdout } = await bash(metricsLine.replace(/^\s*metrics:\s*/, ''));
    expect(stdout).toMatch(/^# TYPE realign_/m);
    const tenants = await fetch(`${vars.EDGE}/admin/tenants`, { headers: { authorization: `Bearer ${vars.ADMIN_TOKEN}` } });
    expect(tenants.status).toBe(200);
  });

  it('every README command that targets the running system runs as written', async () => {
    const blocks = readmeBlocks();
    // the Quickstart's chat and metrics calls, the admin snippet, the logits call
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.some((b) => b.includes('tenants/dev/policies/realign-demo'))).toBe(true);
    for (const block of blocks) {
      const r = await bash(block).then(
        (x) => ({ ok: true, ...x }),
        (e: { stdout: string; stderr: string; code: number }) => ({ ok: false, ...e }),
      );
      expect(r.ok, `README block failed:\n${block}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(true);
    }
  }, 180_000);

  it('SIGINT (Ctrl-C) stops npm start and both children', async () => {
    const { pids } = devJson(sys);
    sys.child.kill('SIGINT');
    const ended = await Promise.race([sys.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(ended, sys.stderr()).not.toBeNull();
    expect(await eventually(() => !alive(pids.backend) && !alive(pids.wrangler), 5000)).toBe(true);
  }, 60_000);
});
