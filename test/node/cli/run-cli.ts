/**
 * `realign <args>` as a user runs it, with realign's cache in a temporary folder (REALIGN_CACHE) and stderr not a
 * terminal; resolves with the exit status and both outputs, never rejects.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../../../bin/realign.js');

/** What a run printed and how it ended. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/realign.js <args>` in `cwd` with REALIGN_CACHE=`cache`. */
export function cli(args: string[], opts: { cwd: string; cache: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: opts.cwd,
        env: {
          ...process.env,
          REALIGN_GRAPH_CACHE: '',
          REALIGN_PROGRESS: '',
          REALIGN_NO_MALLOC_TUNING: '1',
          REALIGN_CACHE: opts.cache,
          ...opts.env,
        },
        timeout: 120_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
