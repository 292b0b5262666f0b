/** Test fixtures: tiny random checkpoints in temporary folders, seeds, and error measures. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Architecture } from '../../../gpu-backend/src/checkpoint/config.ts';
import { PRESETS, type ModelPreset } from '../../../gpu-backend/src/make/presets.ts';
import { hfConfig, writeRandomCheckpoint } from '../../../gpu-backend/src/make/synthetic.ts';

/** A fresh seed per run (printed by the tests that use it, so a failure can be replayed with REALIGN_TEST_SEED). */
export function testSeed(): number {
  const fixed = process.env.REALIGN_TEST_SEED;
  return fixed ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
}

const dirs: string[] = [];

/** A temporary folder removed by `cleanupTempDirs`. */
export function tempDir(prefix = 'realign-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Removes every folder made by `tempDir`. */
export function cleanupTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Writes a tiny random checkpoint (no tokenizer) and returns its folder. */
export function tinyCheckpoint(opts: {
  arch: Architecture;
  seed: number;
  tie?: boolean;
  shape?: Partial<ModelPreset>;
  raw?: Record<string, unknown>;
}): string {
  const dir = tempDir();
  const p: ModelPreset = { ...PRESETS.tiny, tieWordEmbeddings: opts.tie ?? false, ...opts.shape };
  const config = { ...hfConfig(opts.arch, p, 'F32', { bos: 1, eos: [2] }), ...opts.raw };
  writeRandomCheckpoint(dir, config, opts.seed, 'F32');
  return dir;
}

/**
 * Relative error used by the numerical tests: max |a − b| over all elements divided by max |b|
 * (b is the reference).
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}
