import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expandCheckpoint } from '../../../gpu-backend/src/make/expand.ts';
import { realign } from '../helpers/cli.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';
import { tinyModelWithTokenizer, writeDataset } from './helpers.ts';

afterAll(cleanupTempDirs);

describe('realign train-inra / train-trra', () => {
  const seed = testSeed();

  it(`train-inra trains an expanded checkpoint into an InRa checkpoint; train-trra writes a LoRA-merged student (seed ${seed})`, async () => {
    const work = tempDir();
    const base = tinyModelWithTokenizer('qwen2', seed);
    const expanded = join(work, 'expanded');
    expandCheckpoint(base, expanded, 1);
    const data = writeDataset(8, seed);
    const out = join(work, 'inra');
    const { stdout, stderr } = await realign(
      [
        'train-inra',
        '--model',
        expanded,
        '--data',
        data,
        '--out',
        out,
        '--steps',
        '3',
        '--batch-size',
        '4',
        '--lr',
        '1e-3',
        '--device',
        'cpu',
        '--warmup',
        '1',
      ],
      work,
    );
    expect(stdout.trim()).toBe(out);
    expect(stderr).toMatch(/train-inra step 3\/3 loss \d+\.\d+ .* tok\/s/);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).realign_inra.adapter_layers).toBe(1);
    expect(existsSync(`${out}.train`)).toBe(false);

    const student = join(work, 'student');
    const t = await realign(
      [
        'train-trra',
        '--reference',
        base,
        '--aligned',
        out,
        '--lambda',
        '1.5',
        '--data',
        data,
        '--out',
        student,
        '--steps',
        '2',
        '--lora',
        '2',
        '--device',
        'cpu',
      ],
      work,
    );
    expect(t.stdout.trim()).toBe(student);
    expect(JSON.parse(readFileSync(join(student, 'realign_train.json'), 'utf8')).trra).toEqual({
      lambda: 1.5,
      kl: 'reverse',
      iterations: 1,
      lora: { rank: 2, alpha: 4 },
    });
  }, 120_000);

  it('usage errors exit with status 2 and say what to change', async () => {
    const work = tempDir();
    const fail = async (args: string[]) => {
      const err = await realign(args, work).then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(2);
      return err!.stderr;
    };
    expect(await fail(['train-inra', '--data', 'x.jsonl', '--out', 'o'])).toMatch(/--model <expanded dir> is required/);
    expect(
      await fail([
        'train-trra',
        '--reference',
        'r',
        '--aligned',
        'a',
        '--lambda',
        '2',
        '--data',
        'd',
        '--out',
        'o',
        '--kl',
        'sideways',
      ]),
    ).toMatch(/--kl must be forward or reverse/);
    expect(await fail(['train-inra', '--model', 'm', '--data', 'd', '--out', 'o', '--epochs', '2', '--steps', '3'])).toMatch(
      /either --epochs or --steps/,
    );
  }, 60_000);
});
