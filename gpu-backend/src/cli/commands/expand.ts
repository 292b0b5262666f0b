import { expandCheckpoint } from '../../checkpoint/expand.ts';
import { num, parse } from '../args.ts';
import { ProgressBar } from '../progress.ts';

export const usage = 'realign expand <base> <out> [--adapter-layers k]';

/** InRa identity expansion of a checkpoint. */
export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { 'adapter-layers': { type: 'string' } }, 2);
  const bar = new ProgressBar('expand');
  expandCheckpoint(positionals[0], positionals[1], num(values['adapter-layers'], 'adapter-layers', 1), (d, t) => bar.update(d, t));
  process.stdout.write(`${positionals[1]}\n`);
}
