import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { graphCacheDir } from '../cache-dir.ts';
import { buildDecodeLoopGraph, buildModelGraph, type GraphManifest, type GraphSpec } from './model-graph.ts';
import { writeOnnxModel } from './onnx-writer.ts';

/**
 * Which graph of a spec: the step graph, the greedy decode-loop graph, or `capture`: the step graph without control
 * flow, for captured (CUDA graph) decode steps (buildModelGraph, engine/captured-steps.ts).
 */
export type GraphVariant = 'step' | 'decode-loop' | 'capture';

/** Bump when the graph layout changes, so cached graphs are rebuilt. */
export const GRAPH_FORMAT_VERSION = 4;

/** A graph on disk, ready for a session. */
export interface GraphFiles {
  dir: string;
  modelPath: string;
  manifest: GraphManifest;
  /** whether it was built now (false: found in the cache) */
  built: boolean;
  buildMs: number;
}

/** Identifies a spec's inputs: configs, weight files' sizes and times, and the builder version. */
export function graphCacheKey(spec: GraphSpec, variant: GraphVariant = 'step'): string {
  const h = createHash('sha256');
  // `quant` and `deviceSampling` are left out of the JSON when absent, so other graphs keep the keys they had before
  // those options existed
  const sampling = spec.deviceSampling && variant !== 'decode-loop' ? { deviceSampling: true } : {};
  h.update(
    JSON.stringify({
      v: GRAPH_FORMAT_VERSION,
      variant,
      mode: spec.mode,
      floatType: spec.floatType,
      maxContext: spec.maxContext,
      quant: spec.quant,
      ...sampling,
    }),
  );
  for (const ckpt of [spec.model, spec.aligned, spec.reference]) {
    if (!ckpt) {
      h.update('-');
      continue;
    }
    h.update(JSON.stringify(ckpt.config));
    for (const file of new Set([...ckpt.store.entries.values()].map((e) => e.file))) {
      const st = statSync(file);
      h.update(`${file}:${st.size}:${st.mtimeMs}`);
    }
  }
  return h.digest('hex').slice(0, 20);
}

/** The cache folder of a spec's graph, and whether a complete graph is already there. */
export function graphDir(spec: GraphSpec, cacheRoot: string, variant: GraphVariant = 'step'): string {
  const sampling = spec.deviceSampling && variant !== 'decode-loop' ? '-sampling' : '';
  const suffix = variant === 'step' ? sampling : `-${variant}${sampling}`;
  const weights = spec.quant ? `${spec.floatType}-int${spec.quant.bits}` : spec.floatType;
  return join(cacheRoot, `${spec.mode}${suffix}-${weights}-${graphCacheKey(spec, variant)}`);
}

/** Whether the graph of a spec is in the cache. */
export function graphCached(spec: GraphSpec, cacheRoot: string, variant: GraphVariant = 'step'): boolean {
  return existsSync(join(graphDir(spec, cacheRoot, variant), 'manifest.json'));
}

/**
 * Returns the graph for `spec`, building it into `cacheRoot/<key>/` when it is not there yet. The build writes
 * into a temporary folder of its own (named by process, thread and a random suffix, so builders in other threads or
 * processes never share it) that is renamed when complete, so an interrupted build leaves no half graph behind. When
 * another builder finished the same graph first, its graph is kept and this build is discarded: a complete graph in
 * the cache is never replaced while someone may be loading it.
 */
export function ensureGraph(
  spec: GraphSpec,
  cacheRoot: string,
  onProgress?: (done: number, total: number) => void,
  variant: GraphVariant = 'step',
): GraphFiles {
  const dir = graphDir(spec, cacheRoot, variant);
  const cached = (): GraphFiles | undefined => {
    const manifestPath = join(dir, 'manifest.json');
    if (!existsSync(manifestPath)) return undefined;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as GraphManifest;
    return { dir, modelPath: join(dir, 'model.onnx'), manifest, built: false, buildMs: 0 };
  };
  const found = cached();
  if (found) return found;
  const start = performance.now();
  const tmp = `${dir}.partial-${process.pid}-${threadId}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp, { recursive: true });
  try {
    const { graph, manifest } =
      variant === 'decode-loop'
        ? buildDecodeLoopGraph(spec)
        : buildModelGraph(spec, { unconditionalAdapters: variant === 'capture' });
    writeOnnxModel(graph, tmp, 'model', onProgress);
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2));
    if (!publish(tmp, dir)) {
      rmSync(tmp, { recursive: true, force: true });
      return cached()!;
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { ...cached()!, built: true, buildMs: performance.now() - start };
}

/**
 * Renames a finished build to its cache folder; false when another builder's complete graph is already there. A
 * folder there without a manifest (left by hand or by an older realign) is replaced.
 */
function publish(tmp: string, dir: string): boolean {
  if (existsSync(join(dir, 'manifest.json'))) return false;
  try {
    renameSync(tmp, dir);
    return true;
  } catch (err) {
    if (existsSync(join(dir, 'manifest.json'))) return false;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return true;
  }
}

/** Default cache folder for built graphs (under the user's cache directory; see cache-dir.ts). */
export function defaultGraphCache(): string {
  return graphCacheDir();
}
