#!/usr/bin/env node
// Entry point of the `realign` command. The TypeScript sources run through tsx.
//
// glibc returns large freed blocks to the OS at once, so every step's fresh output arrays (logits, KV views) would
// be page-faulted in anew; on the VMs we measured that costs ~3 ms per MB. Keeping freed memory in the heap avoids
// it. The allocator reads these settings at process start, so the command re-runs itself once with them set.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../gpu-backend/src/cli/main.ts', import.meta.url));
const tuned = {
  MALLOC_MMAP_THRESHOLD_: '1073741824',
  MALLOC_TRIM_THRESHOLD_: '4294967296',
  MALLOC_TOP_PAD_: '268435456',
};

if (process.env.MALLOC_MMAP_THRESHOLD_ === undefined && process.env.REALIGN_NO_MALLOC_TUNING === undefined) {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...tuned },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(main);
}
