/** Runs the `realign` command as a user would: `node bin/realign.js …` in `cwd`, with a graph cache under it. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../../bin/realign.js');

/** `realign <args>` in `cwd`; resolves with its stdout and stderr, rejects on a non-zero exit. */
export const realign = (args: string[], cwd: string) =>
  run(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, REALIGN_GRAPH_CACHE: join(cwd, 'graphs') } });
