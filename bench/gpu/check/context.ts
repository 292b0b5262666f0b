/** The command line of gpu-check.ts and the small helpers every subcommand shares (log, save, need, graph cache). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: 'string' },
    out: { type: 'string' },
    ref: { type: 'string' },
    ours: { type: 'string' },
    'decode-loop-steps': { type: 'string' },
    results: { type: 'string' },
    preset: { type: 'string', default: 'r1-distill-qwen-1.5b' },
    dtype: { type: 'string', default: 'F16' },
    device: { type: 'string', default: 'cuda' },
    batches: { type: 'string', default: '1,32,64' },
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '64' },
    'max-context': { type: 'string', default: '1024' },
    cache: { type: 'string' },
  },
});
export const device = values.device as 'cpu' | 'cuda';
export const maxContext = Number(values['max-context']);
export const log = (msg: string) =>
  process.stderr.write(`[gpu-check ${((performance.now() / 1000) | 0).toString().padStart(4)}s] ${msg}\n`);
export const save = (file: string, obj: unknown) => writeFileSync(file, `${JSON.stringify(obj, null, 2)}\n`);
export const need = (name: string, v: string | undefined): string => {
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
};
export const graphCache = () => values.cache ?? join(need('dir', values.dir), 'graphs');
