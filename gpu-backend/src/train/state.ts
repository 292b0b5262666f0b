/**
 * Training checkpoints (for resume): parameters and AdamW moments in one safetensors file, the step and history in
 * JSON, under `<stateDir>/step-<n>/`; `latest.json` names the newest complete one and is replaced only after it is
 * fully written, so an interrupted save leaves the previous state usable.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TensorStore, writeSafetensors } from '../checkpoint/safetensors.ts';

/** Everything needed to continue a run. */
export interface TrainState {
  /** optimizer steps done */
  step: number;
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  /** response tokens trained on so far */
  tokens: number;
  /** loss of each step so far */
  losses: number[];
  /** identifies the options the run was started with; a resume with other options is refused */
  fingerprint: string;
}

/** How many step folders to keep. */
const KEEP = 2;

/** Saves a state and makes it the latest. */
export function saveState(dir: string, state: TrainState, shapes: ReadonlyMap<string, number[]>): string {
  const name = `step-${String(state.step).padStart(7, '0')}`;
  const target = join(dir, name);
  const tmp = `${target}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const tensors = [...state.params.keys()].flatMap((p) =>
    (['param', 'm', 'v'] as const).map((kind) => {
      const values = (kind === 'param' ? state.params : kind === 'm' ? state.m : state.v).get(p)!;
      return {
        name: `${kind}/${p}`,
        dtype: 'F32' as const,
        shape: shapes.get(p)!,
        bytes: () => new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      };
    }),
  );
  writeSafetensors(join(tmp, 'state.safetensors'), tensors);
  writeFileSync(
    join(tmp, 'state.json'),
    JSON.stringify({
      step: state.step,
      tokens: state.tokens,
      losses: state.losses,
      fingerprint: state.fingerprint,
      params: [...state.params.keys()],
    }),
  );
  rmSync(target, { recursive: true, force: true });
  renameSync(tmp, target);
  writeFileSync(join(dir, 'latest.json.tmp'), JSON.stringify({ folder: name }));
  renameSync(join(dir, 'latest.json.tmp'), join(dir, 'latest.json'));
  const old = readdirSync(dir)
    .filter((f) => /^step-\d+$/.test(f))
    .sort();
  for (const f of old.slice(0, Math.max(0, old.length - KEEP))) rmSync(join(dir, f), { recursive: true, force: true });
  return target;
}

/** The latest saved state in `dir`, or null when there is none. */
export function loadLatestState(dir: string): TrainState | null {
  const latest = join(dir, 'latest.json');
  if (!existsSync(latest)) return null;
  const { folder } = JSON.parse(readFileSync(latest, 'utf8')) as { folder: string };
  const meta = JSON.parse(readFileSync(join(dir, folder, 'state.json'), 'utf8')) as {
    step: number;
    tokens: number;
    losses: number[];
    fingerprint: string;
    params: string[];
  };
  const store = TensorStore.openFile(join(dir, folder, 'state.safetensors'));
  const read = (kind: string) => new Map(meta.params.map((p) => [p, store.readFloat32(`${kind}/${p}`)]));
  return {
    step: meta.step,
    tokens: meta.tokens,
    losses: meta.losses,
    fingerprint: meta.fingerprint,
    params: read('param'),
    m: read('m'),
    v: read('v'),
  };
}
