/**
 * Named InRa adapters over one base (DESIGN.md, "Several adapters"): a checkpoint whose bottom layers are N adapters
 * one after another, then the original layers, with `config.json`'s `realign_inra.adapters` naming each one
 * ([{ name, layers }] bottom first). Adding, removing and importing adapters write a new checkpoint folder.
 */
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { ADAPTER_MARKER, ADAPTER_NAME, DEFAULT_ADAPTER, type AdapterInfo } from '../checkpoint/config.ts';
import { CheckpointError } from '../checkpoint/errors.ts';
import { layerTensorNames } from '../checkpoint/names.ts';
import type { TensorToWrite } from '../checkpoint/safetensors.ts';
import { writeFolderAtomically, writeWeights } from '../checkpoint/writer.ts';

/** One adapter of the checkpoint to write: copied from the source's adapter `from`, or a new identity adapter. */
type AdapterSource = { name: string; from: string } | { name: string; identity: number };

/** The adapters of a checkpoint folder (none for an ordinary one; `inraAdapterLayers` opens the original release). */
export function listAdapters(dir: string, inraAdapterLayers?: number): AdapterInfo[] {
  return openCheckpoint(dir, inraAdapterLayers === undefined ? {} : { inraAdapterLayers }).config.adapters;
}

/**
 * Writes `out`: `model` (ordinary or InRa) with a new identity adapter `name` of `layers` layers above its adapters
 * (copies of the bottom original layer with o_proj and down_proj zeroed, so the new adapter is the base until trained).
 */
export function addAdapter(
  model: string,
  out: string,
  name: string,
  layers = 1,
  onProgress?: (done: number, total: number) => void,
): void {
  checkName(name);
  if (!Number.isInteger(layers) || layers < 1)
    throw new CheckpointError(`--adapter-layers must be a positive integer, got ${layers}`);
  const ckpt = openCheckpoint(model);
  if (ckpt.config.adapters.some((a) => a.name === name))
    throw new CheckpointError(`${model} already has an adapter named "${name}"`, join(model, 'config.json'));
  const keep: AdapterSource[] = ckpt.config.adapters.map((a) => ({ name: a.name, from: a.name }));
  rewrite(ckpt, out, [...keep, { name, identity: layers }], onProgress);
}

/** Writes `out`: `model` without adapter `name` (without its last adapter it is the base model again). */
export function removeAdapter(
  model: string,
  out: string,
  name: string,
  onProgress?: (done: number, total: number) => void,
): void {
  const ckpt = openCheckpoint(model);
  const names = ckpt.config.adapters.map((a) => a.name);
  if (!names.includes(name))
    throw new CheckpointError(
      `${model} has no adapter named "${name}" (it has: ${names.join(', ') || 'none'})`,
      join(model, 'config.json'),
    );
  const keep = ckpt.config.adapters.filter((a) => a.name !== name).map((a) => ({ name: a.name, from: a.name }));
  rewrite(ckpt, out, keep, onProgress);
}

/**
 * Writes `out`: a checkpoint of the original release's layout (its bottom `adapterLayers` layers one adapter, no
 * realign marker) as a realign checkpoint whose one adapter is called `name`.
 */
export function importReleaseAdapter(
  model: string,
  out: string,
  name = DEFAULT_ADAPTER,
  adapterLayers = 1,
  onProgress?: (done: number, total: number) => void,
): void {
  checkName(name);
  const ckpt = openCheckpoint(model, { inraAdapterLayers: adapterLayers });
  if (ckpt.config.adapters.length !== 1 || ckpt.config.adapters[0].name !== DEFAULT_ADAPTER || hasMarker(model))
    throw new CheckpointError(
      `${model} is a realign checkpoint already; use \`realign adapters add\``,
      join(model, 'config.json'),
    );
  rewrite(ckpt, out, [{ name, from: DEFAULT_ADAPTER }], onProgress);
}

function hasMarker(dir: string): boolean {
  const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  return raw[ADAPTER_MARKER] !== undefined;
}

function checkName(name: string): void {
  if (!ADAPTER_NAME.test(name))
    throw new CheckpointError(
      `adapter name ${JSON.stringify(name)} must match ${ADAPTER_NAME.source} (lower case, digits, _ and -)`,
    );
}

/** Writes `out` from `ckpt` with the adapters `adapters` (bottom first) below its original layers. */
function rewrite(
  ckpt: Checkpoint,
  out: string,
  adapters: AdapterSource[],
  onProgress?: (done: number, total: number) => void,
): void {
  const cfg = ckpt.config;
  const baseLayers = cfg.numLayers - cfg.adapterLayers;
  const zeroed = new Set(['o', 'oBias', 'down', 'downBias']);
  const raw = JSON.parse(readFileSync(join(ckpt.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  // checkpoint layer of the source → layers of the new checkpoint, with whether the copy is zeroed
  const targets = new Map<number, { to: number; zero: boolean }[]>();
  const put = (from: number, to: number, zero: boolean) => targets.set(from, [...(targets.get(from) ?? []), { to, zero }]);
  const written: { name: string; layers: number }[] = [];
  let at = 0;
  for (const a of adapters) {
    if ('from' in a) {
      const src = cfg.adapters.find((x) => x.name === a.from)!;
      for (let l = 0; l < src.layers; l++) put(src.first + l, at + l, false);
      written.push({ name: a.name, layers: src.layers });
      at += src.layers;
    } else {
      for (let l = 0; l < a.identity; l++) put(cfg.adapterLayers, at + l, true);
      written.push({ name: a.name, layers: a.identity });
      at += a.identity;
    }
  }
  const adapterLayers = at;
  for (let l = 0; l < baseLayers; l++) put(cfg.adapterLayers + l, adapterLayers + l, false);
  writeFolderAtomically(out, (dir) => {
    const tensors: TensorToWrite[] = [];
    const bottom = layerTensorNames(cfg.adapterLayers);
    const zeroNames = new Set([...zeroed].map((k) => bottom[k as keyof typeof bottom]));
    for (const e of ckpt.store.entries.values()) {
      const m = /^model\.layers\.(\d+)\.(.*)$/.exec(e.name);
      const copies = m ? (targets.get(Number(m[1])) ?? []) : [{ to: -1, zero: false }];
      for (const c of copies) {
        const zero = c.zero && zeroNames.has(e.name);
        tensors.push({
          name: m ? `model.layers.${c.to}.${m[2]}` : e.name,
          dtype: e.dtype,
          shape: e.shape,
          bytes: () => (zero ? new Uint8Array(e.byteLength) : ckpt.store.readBytes(e.name).bytes),
        });
      }
    }
    tensors.sort((a, b) => layerOrder(a.name) - layerOrder(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    writeWeights(dir, tensors, undefined, onProgress);
    const config: Record<string, unknown> = { ...raw, num_hidden_layers: adapterLayers + baseLayers };
    delete config[ADAPTER_MARKER];
    if (adapterLayers > 0) config[ADAPTER_MARKER] = { adapter_layers: adapterLayers, base_layers: baseLayers, adapters: written };
    if (Array.isArray(raw.layer_types)) {
      const types = raw.layer_types.slice(cfg.adapterLayers);
      config.layer_types = [...Array(adapterLayers).fill(types[0]), ...types];
    }
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    for (const f of readdirSync(ckpt.dir)) {
      if (f === 'config.json' || f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json')) continue;
      if (!f.startsWith('.') && statSync(join(ckpt.dir, f)).isFile()) copyFileSync(join(ckpt.dir, f), join(dir, f));
    }
  });
}

/** Sort key: embedding first, layers in order, the rest after. */
function layerOrder(name: string): number {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  if (m) return 1 + Number(m[1]);
  return name.startsWith('model.embed_tokens') ? 0 : Number.MAX_SAFE_INTEGER;
}
