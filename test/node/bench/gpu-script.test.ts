/**
 * The one-shot GPU check (bench/gpu/gpu-check.sh) in its dry-run mode on the CPU: every stage runs (tiny shape; the
 * transformers comparison replaced by realign's float64 reference where python3 has no torch), and the results
 * folder holds the files and fields the GPU session reads, and the base checkpoint is byte for byte init-model's. Also: every script in bench/gpu parses (`bash -n`), and
 * the parts the bundle is moved in reassemble byte for byte.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const GPU = join(ROOT, 'bench/gpu');

afterAll(cleanupTempDirs);

describe('bench/gpu one-shot check', () => {
  it('every shell script parses', () => {
    const scripts = readdirSync(GPU).filter((f) => f.endsWith('.sh'));
    expect(scripts).toEqual(expect.arrayContaining(['gpu-check.sh', 'parts.sh', 'bundle.sh']));
    for (const s of scripts) expect(spawnSync('bash', ['-n', join(GPU, s)]).status, s).toBe(0);
  });

  it('parts.sh splits files into folders whose place.sh reassembles them (stale pieces ignored)', () => {
    const dir = tempDir('realign-parts-');
    const src = join(dir, 'src');
    mkdirSync(join(src, '.gpu/bundle'), { recursive: true });
    const big = randomBytes(2_500_000); // does not compress: three 1 MB pieces
    writeFileSync(join(src, '.gpu/bundle/big.bin'), big);
    writeFileSync(join(src, '.gpu/node'), 'node');
    execFileSync('bash', [join(GPU, 'parts.sh'), join(dir, 'out'), '.gpu'], {
      cwd: src,
      env: { ...process.env, PART_MB: '1' },
      stdio: 'pipe',
    });
    const folders = readdirSync(join(dir, 'out')).sort((a, b) => Number(a) - Number(b));
    expect(folders.length).toBeGreaterThan(1);
    const env = { ...process.env, PLACE_PARTS: join(dir, 'parts'), PLACE_ROOT: join(dir, 'root') };
    mkdirSync(env.PLACE_PARTS, { recursive: true });
    writeFileSync(join(env.PLACE_PARTS, 'piece-000000000000-000'), 'left over from another bundle');
    folders.forEach((f, i) => {
      const said = execFileSync('bash', [join(dir, 'out', f, 'place.sh')], { env, encoding: 'utf8' });
      expect(said).toContain(i + 1 < folders.length ? `have ${i + 1} of ${folders.length}` : 'unpacked');
    });
    expect(readFileSync(join(dir, 'root/.gpu/bundle/big.bin')).equals(big)).toBe(true);
    expect(readFileSync(join(dir, 'root/.gpu/node'), 'utf8')).toBe('node');
  });

  it('the dry run runs every stage and writes the results folder', () => {
    const out = tempDir('realign-gpu-check-');
    const r = spawnSync('bash', [join(GPU, 'gpu-check.sh'), '--dry-run'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, OUT: out, GPU_CHECK_WORK: join(out, 'work'), GPU_CHECK_BATCHES: '1,8', GPU_CHECK_TOKENS: '4' },
      timeout: 110_000,
    });
    const res = join(out, 'gpu-check');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const f of [
      'env.txt',
      'env.json',
      'nvidia-smi.txt',
      'stages.jsonl',
      'models.json',
      'correctness.json',
      'throughput.json',
      'results.md',
      'summary.json',
      'engine.log',
    ]) {
      expect(existsSync(join(res, f)), f).toBe(true);
    }
    const stages = readFileSync(join(res, 'stages.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; status: string; seconds: number; budget: number });
    const byName = new Map(stages.map((s) => [s.name, s]));
    for (const name of ['env', 'models', 'logits', 'compare', 'engine', 'report'])
      expect(byName.get(name)?.status, name).toBe('ok');
    // the reference side: transformers where python3 has it, else realign's float64 forward (said so)
    const hf = byName.get('hf')!;
    expect(['ok', 'skipped']).toContain(hf.status);
    if (hf.status === 'skipped') expect(byName.get('ref-logits')?.status).toBe('ok');
    for (const s of stages) expect(s.seconds).toBeLessThanOrEqual(s.budget + 6);

    const env = JSON.parse(readFileSync(join(res, 'env.json'), 'utf8')) as Record<string, unknown>;
    expect(env).toMatchObject({ dryRun: true, preset: 'tiny', device: 'cpu' });
    const models = JSON.parse(readFileSync(join(res, 'models.json'), 'utf8')) as Record<string, number>;
    expect(models.inraLayers).toBe(3); // tiny: 2 layers + 1 adapter
    expect(models.inraBytes).toBeGreaterThan(models.baseBytes);
    // the parallel draw writes exactly what `realign init-model --preset tiny --seed 1 --dtype F32` writes
    const mine = join(out, 'work/models-tiny-F32/base');
    const theirs = join(out, 'init-model');
    initModel(theirs, { arch: 'qwen2', preset: 'tiny', seed: 1, dtype: 'F32' });
    expect(readdirSync(mine).sort()).toEqual(readdirSync(theirs).sort());
    for (const f of readdirSync(theirs)) expect(readFileSync(join(mine, f)).equals(readFileSync(join(theirs, f))), f).toBe(true);

    // float32 graph on the CPU against a float64 forward (or transformers float32): the reference tests' 1e-4
    const cor = JSON.parse(readFileSync(join(res, 'correctness.json'), 'utf8')) as {
      rows: { lambda: number; relErr: number; argmaxEqual: boolean }[];
    };
    expect(cor.rows.map((r) => r.lambda)).toEqual([0, 0.5, 1]);
    for (const row of cor.rows) {
      expect(row.relErr).toBeLessThan(1e-4);
      expect(row.argmaxEqual).toBe(true);
    }

    const thr = JSON.parse(readFileSync(join(res, 'throughput.json'), 'utf8')) as { table: Record<string, number>[] };
    expect(thr.table.map((r) => r.batch)).toEqual([1, 8]);
    for (const row of thr.table) {
      expect(row.error).toBeUndefined();
      expect(row.tokens).toBe(row.batch * 4);
      for (const k of ['msPerStep', 'newTokensPerSecond', 'prefillTokensPerSecond', 'hostDeviceBytesPerStep']) {
        expect(Number.isFinite(row[k]) && row[k] > 0, `${k} at batch ${row.batch}: ${row[k]}`).toBe(true);
      }
      expect(row.decodeSteps).toBeGreaterThanOrEqual(3);
    }

    // CUDA graphs on/off: on the CPU the captured side runs the same padded path with host buffers, so it must choose
    // the same tokens with the same logits (within 1e-5), every decode step captured
    expect(byName.get('graphs')?.status).toBe('ok');
    const gra = JSON.parse(readFileSync(join(res, 'cuda-graphs.json'), 'utf8')) as {
      captureAttached: boolean;
      steps: number;
      table: Record<string, number | string | null>[];
    };
    expect(gra.captureAttached).toBe(true);
    expect(gra.table.map((r) => r.batch)).toEqual([1, 8]);
    for (const row of gra.table) {
      expect(row.error).toBeUndefined();
      expect(row.capturedRuns).toBe(gra.steps);
      expect(row.fallbacks).toBe(0);
      expect(row.tokenAgreement).toBe(1);
      expect(row.logitsRelErrRow0).toBeLessThan(1e-5);
      expect(row.captureError).toBeNull();
    }

    const md = readFileSync(join(res, 'results.md'), 'utf8');
    expect(md).toContain('DRY RUN');
    for (const s of [
      'batch 1 ms per decode step',
      '<= 2.5',
      '>= 8000',
      '>= 30000',
      '<= 0.005, same argmax',
      'host↔device bytes/step',
    ])
      expect(md).toContain(s);
    const summary = JSON.parse(readFileSync(join(res, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(summary)).toEqual(
      expect.arrayContaining(['env', 'stages', 'models', 'correctness', 'throughput', 'checks']),
    );
  }, 120_000);
});
