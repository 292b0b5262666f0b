/** Named InRa adapters on disk: `realign expand --name`, `realign adapters list|add|remove|import` (make/adapters.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { addAdapter, importReleaseAdapter, listAdapters, removeAdapter } from '../../../gpu-backend/src/make/adapters.ts';
import { expandCheckpoint } from '../../../gpu-backend/src/make/expand.ts';
import { perturbCheckpoint } from '../../../gpu-backend/src/make/synthetic.ts';
import { realign } from '../helpers/cli.ts';
import { cleanupTempDirs, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

/** Every tensor of checkpoint layer `layer` (names without the layer prefix → bytes). */
function layer(dir: string, index: number): Map<string, string> {
  const store = openCheckpoint(dir).store;
  const prefix = `model.layers.${index}.`;
  const out = new Map<string, string>();
  for (const e of store.entries.values())
    if (e.name.startsWith(prefix))
      out.set(e.name.slice(prefix.length), Buffer.from(store.readBytes(e.name).bytes).toString('hex'));
  return out;
}

describe('named InRa adapters on disk', () => {
  const seed = testSeed();

  it(`adapters are added, listed and removed; every layer keeps its weights through the moves (seed ${seed})`, async () => {
    const work = tempDir();
    const base = tinyCheckpoint({ arch: 'qwen2', seed });
    const e1 = join(work, 'e1');
    await realign(['expand', base, e1, '--name', 'concise'], work);
    // a trained adapter: its layer changes, and must travel unchanged
    const t1 = join(work, 't1');
    perturbCheckpoint(e1, t1, (n) => n.startsWith('model.layers.0.'), seed, 0.05);
    const e2 = join(work, 'e2');
    addAdapter(t1, e2, 'safe', 2);
    const e3 = join(work, 'e3');
    addAdapter(e2, e3, 'style');
    const { stdout } = await realign(['adapters', 'list', e3], work);
    expect(JSON.parse(stdout)).toEqual([
      { name: 'concise', first: 0, layers: 1 },
      { name: 'safe', first: 1, layers: 2 },
      { name: 'style', first: 3, layers: 1 },
    ]);
    const cfg = JSON.parse(readFileSync(join(e3, 'config.json'), 'utf8'));
    expect(cfg.num_hidden_layers).toBe(2 + 4);
    expect(cfg.realign_inra).toEqual({
      adapter_layers: 4,
      base_layers: 2,
      adapters: [
        { name: 'concise', layers: 1 },
        { name: 'safe', layers: 2 },
        { name: 'style', layers: 1 },
      ],
    });
    // concise is the trained layer; safe and style are the bottom original layer with o_proj and down_proj zeroed
    expect(layer(e3, 0)).toEqual(layer(t1, 0));
    const bottom = layer(base, 0);
    for (const l of [1, 2, 3]) {
      const got = layer(e3, l);
      for (const [name, hex] of bottom) {
        const zeroed = name === 'self_attn.o_proj.weight' || name === 'mlp.down_proj.weight';
        expect(got.get(name), `layer ${l} ${name}`).toBe(zeroed ? '0'.repeat(hex.length) : hex);
      }
    }
    expect(layer(e3, 4)).toEqual(layer(base, 0));
    expect(layer(e3, 5)).toEqual(layer(base, 1));
    const e4 = join(work, 'e4');
    removeAdapter(e3, e4, 'safe');
    expect(listAdapters(e4)).toEqual([
      { name: 'concise', first: 0, layers: 1 },
      { name: 'style', first: 1, layers: 1 },
    ]);
    expect(layer(e4, 0)).toEqual(layer(t1, 0));
    expect(layer(e4, 1)).toEqual(layer(e3, 3));
    expect(layer(e4, 2)).toEqual(layer(base, 0));
    // without its last adapters it is the base model again
    const e5 = join(work, 'e5');
    const e6 = join(work, 'e6');
    removeAdapter(e4, e5, 'concise');
    removeAdapter(e5, e6, 'style');
    expect(openCheckpoint(e6).config.adapterLayers).toBe(0);
    expect(JSON.parse(readFileSync(join(e6, 'config.json'), 'utf8')).realign_inra).toBeUndefined();
    for (const l of [0, 1]) expect(layer(e6, l)).toEqual(layer(base, l));
  }, 60_000);

  it(`a checkpoint of the original release (adapter as layer 0, no marker) imports as one named adapter (seed ${seed})`, async () => {
    const work = tempDir();
    const base = tinyCheckpoint({ arch: 'llama', seed: seed + 1 });
    const release = join(work, 'release');
    expandCheckpoint(base, release, 1);
    const raw = JSON.parse(readFileSync(join(release, 'config.json'), 'utf8'));
    delete raw.realign_inra;
    writeFileSync(join(release, 'config.json'), JSON.stringify(raw));
    expect(listAdapters(release)).toEqual([]);
    expect(listAdapters(release, 1)).toEqual([{ name: 'aligned', first: 0, layers: 1 }]);
    const out = join(work, 'imported');
    await realign(['adapters', 'import', release, out, '--name', 'slow-thinking'], work);
    expect(listAdapters(out)).toEqual([{ name: 'slow-thinking', first: 0, layers: 1 }]);
    for (const l of [0, 1, 2]) expect(layer(out, l)).toEqual(layer(release, l));
    // and takes more adapters beside it
    const more = join(work, 'more');
    addAdapter(out, more, 'fast');
    expect(listAdapters(more).map((a) => a.name)).toEqual(['slow-thinking', 'fast']);
  }, 60_000);

  it('bad names, duplicates and unknown adapters are refused with the reason', async () => {
    const work = tempDir();
    const base = tinyCheckpoint({ arch: 'qwen2', seed: seed + 2 });
    const e1 = join(work, 'e1');
    addAdapter(base, e1, 'concise');
    expect(() => addAdapter(e1, join(work, 'x'), 'concise')).toThrow(/already has an adapter named "concise"/);
    expect(() => addAdapter(e1, join(work, 'x'), 'Bad Name')).toThrow(/must match/);
    expect(() => removeAdapter(e1, join(work, 'x'), 'safe')).toThrow(/has no adapter named "safe" \(it has: concise\)/);
    expect(() => importReleaseAdapter(e1, join(work, 'x'), 'y')).toThrow(/realign checkpoint already/);
    await expect(realign(['expand', e1, join(work, 'y')], work)).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/already an InRa checkpoint; add a named adapter to it with --name/),
    });
    // a config naming adapters that do not tile its adapter layers does not open
    const cfgFile = join(e1, 'config.json');
    const raw = JSON.parse(readFileSync(cfgFile, 'utf8'));
    raw.realign_inra.adapters = [{ name: 'concise', layers: 2 }];
    writeFileSync(cfgFile, JSON.stringify(raw));
    expect(() => openCheckpoint(e1)).toThrow(/hold 2 layers but "adapter_layers" is 1/);
  }, 60_000);
});
