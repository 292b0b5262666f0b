/**
 * Opens a model for serving: checkpoints → graph (built or found in the cache) → session on the chosen device →
 * a GraphRunner, plus the token table that detokenizes (given by the caller, or built from one tokenizer load).
 */
import { openCheckpoint, eosTokenIds, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { CheckpointError } from '../checkpoint/errors.ts';
import { defaultGraphCache, ensureGraph } from '../graph/build.ts';
import type { GraphMode, GraphSpec } from '../graph/model-graph.ts';
import { graphWeights, type WeightOptions } from '../graph/quantize.ts';
import { ModelSession, probeCuda, type Device } from '../ort/session.ts';
import { TokenTable, type TokenDecoder, type TokenTableData } from '../text/token-table.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { GraphRunner } from './graph-runner.ts';

/** Which checkpoints to serve and how. */
export interface ModelSource {
  mode: Exclude<GraphMode, 'naive-inra'>;
  /** single and inra */
  model?: string;
  /** fusion */
  aligned?: string;
  reference?: string;
  /** for checkpoints of the original InRa release, which carry no marker: how many bottom layers are adapters */
  inraAdapterLayers?: number;
  /** weight format of the graphs (default: the device's float type) */
  weights?: WeightOptions;
}

/** Where and how to run it. */
export interface LoadOptions {
  device: Device | 'auto';
  /** longest sequence (prompt + completion) served; defaults to the model's maximum, capped at 8192 */
  maxContext?: number;
  graphCache?: string;
  threads?: number;
  /** the naive InRa layout (benchmarks only) */
  naive?: boolean;
  /** also load the greedy decode-loop graph of the same spec (a second session) */
  decodeLoop?: boolean;
  /** KV cache rows per group allocated up front (more are added by doubling the buffers); default 4 */
  kvRows?: number;
  /** build the step graph with the sampling block (graph/device-sampling.ts) and let it decide tokens */
  deviceSampling?: boolean;
  /**
   * CUDA graphs for decode steps (engine/captured-steps.ts): a third session of the `capture` graph variant with
   * graph capture on, where decode steps run padded to batch buckets. auto (default): on for CUDA, off on the CPU;
   * on: also on the CPU (the same padded path with host buffers, for tests); off: never. Unset: the environment's
   * REALIGN_CUDA_GRAPHS (auto|on|off), else auto.
   */
  cudaGraphs?: 'auto' | 'on' | 'off';
  /**
   * the model's token table (text/token-table.ts), built where tokenizer.json was parsed (the server's tokenizer
   * thread): then this thread does not parse it again, unless the decoder is not exactly ByteLevel (see
   * {@link textOf}). Unset: the tokenizer is loaded here, once, and the table built from it.
   */
  tokens?: TokenTableData;
  /** the device {@link chooseDevice} already chose for `device` (so a model's device is chosen once); chosen here when unset */
  chosen?: { device: Device; reason: string };
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A model ready to run. */
export interface LoadedModel {
  source: ModelSource;
  runner: GraphRunner;
  /** the tokenizer's per-token bytes and facts */
  tokens: TokenTable;
  /** streamed text: the table, or the tokenizer library where the decoder is not exactly ByteLevel */
  decoder: TokenDecoder;
  eosTokenIds: number[];
  device: Device;
  deviceReason: string;
  maxContext: number;
  vocabSize: number;
  /** ms spent building the graph (0 when it came from the cache) */
  buildMs: number;
  /** inra: the checkpoint's named adapters, bottom first (one: today's λ blend; several: per-row mixes) */
  adapters: string[];
}

/** Resolves `auto` to a device, saying why. */
export async function chooseDevice(requested: Device | 'auto'): Promise<{ device: Device; reason: string }> {
  if (requested === 'cpu') return { device: 'cpu', reason: 'requested --device cpu' };
  const probe = probeCuda();
  if (requested === 'cuda') {
    if (!probe.available) throw new Error(`--device cuda: ${probe.reason}`);
    return { device: 'cuda', reason: 'requested --device cuda' };
  }
  return probe.available
    ? { device: 'cuda', reason: probe.reason }
    : { device: 'cpu', reason: `falling back to CPU: ${probe.reason}` };
}

/** Opens the checkpoints named by a source (validating them). */
export function openSource(source: ModelSource): { model?: Checkpoint; aligned?: Checkpoint; reference?: Checkpoint } {
  const need = (dir: string | undefined, what: string): string => {
    if (!dir) throw new CheckpointError(`mode ${source.mode} needs a ${what} checkpoint folder`);
    return dir;
  };
  if (source.mode === 'fusion') {
    return {
      aligned: openCheckpoint(need(source.aligned, 'aligned')),
      reference: openCheckpoint(need(source.reference, 'reference')),
    };
  }
  const opts = source.mode === 'inra' ? { inraAdapterLayers: source.inraAdapterLayers ?? 1 } : {};
  return { model: openCheckpoint(need(source.model, 'model'), opts) };
}

/** Loads a model: builds (or reuses) its graph and opens a session. */
export async function loadModel(source: ModelSource, opts: LoadOptions): Promise<LoadedModel> {
  const ckpts = openSource(source);
  const main = (ckpts.model ?? ckpts.reference)!;
  const { device, reason } = opts.chosen ?? (await chooseDevice(opts.device));
  const maxContext = Math.min(opts.maxContext ?? 8192, main.config.maxPositions);
  const spec: GraphSpec = {
    mode: opts.naive && source.mode === 'inra' ? 'naive-inra' : source.mode,
    ...graphWeights(source.weights, device),
    maxContext,
    ...ckpts,
  };
  const files = ensureGraph(
    opts.deviceSampling ? { ...spec, deviceSampling: true } : spec,
    opts.graphCache ?? defaultGraphCache(),
  );
  opts.log?.('graph ready', { dir: files.dir, built: files.built, buildMs: Math.round(files.buildMs) });
  let session: ModelSession;
  try {
    session = await ModelSession.open(files.modelPath, { device, threads: opts.threads });
  } catch (err) {
    if (opts.device !== 'auto' || device === 'cpu') throw err;
    // the provider libraries exist but do not load (driver, CUDA version): serve on CPU and say why
    opts.log?.('CUDA session failed, using CPU', { error: (err as Error).message });
    return loadModel(source, { ...opts, device: 'cpu', chosen: undefined });
  }
  opts.log?.('device', { device, reason });
  const runner = new GraphRunner(session, files.manifest, { rows: opts.kvRows });
  const graphs = opts.cudaGraphs ?? cudaGraphsFromEnv();
  // captured steps serve the 'rows' layout of single and one-adapter InRa graphs (captured-steps.ts)
  const capturable = files.manifest.rowLayout === 'rows' && !files.manifest.adapters;
  if (capturable && (graphs === 'on' || (graphs === 'auto' && device === 'cuda'))) {
    const sampled = opts.deviceSampling ? { ...spec, deviceSampling: true } : spec;
    try {
      // single-model graphs have no If: their step graph is the capture graph
      const capture =
        spec.mode === 'inra' ? ensureGraph(sampled, opts.graphCache ?? defaultGraphCache(), undefined, 'capture') : files;
      runner.attachCapture(
        await ModelSession.open(capture.modelPath, { device, threads: opts.threads, cudaGraphs: true }),
        capture.manifest,
      );
    } catch (err) {
      // e.g. ORT refuses graph capture for the session: serve without CUDA graphs and say why
      opts.log?.('CUDA graphs off', { error: (err as Error).message });
    }
  }
  if (opts.decodeLoop) {
    const loop = ensureGraph(spec, opts.graphCache ?? defaultGraphCache(), undefined, 'decode-loop');
    runner.attachLoop(await ModelSession.open(loop.modelPath, { device, threads: opts.threads }), loop.manifest);
  }
  const { tokens, decoder } = textOf(main, opts.tokens);
  const eos = eosTokenIds(main);
  return {
    source,
    runner,
    tokens,
    decoder,
    // generation_config often lists more stop ids than the tokenizer's eos_token (Qwen: <|endoftext|> too)
    eosTokenIds: [...new Set([...eos, ...tokens.eosTokenIds])],
    device,
    deviceReason: reason,
    maxContext,
    vocabSize: files.manifest.vocabSize,
    buildMs: files.buildMs,
    adapters: source.mode === 'inra' ? main.config.adapters.map((a) => a.name) : [],
  };
}

/** REALIGN_CUDA_GRAPHS (auto|on|off; unset: auto). */
function cudaGraphsFromEnv(): 'auto' | 'on' | 'off' {
  const v = process.env.REALIGN_CUDA_GRAPHS ?? 'auto';
  if (v !== 'auto' && v !== 'on' && v !== 'off') throw new Error(`REALIGN_CUDA_GRAPHS=${v}: auto, on or off`);
  return v;
}

/**
 * The model's token table and its decoder. With a table given, tokenizer.json is not parsed here, unless its decoder
 * is not exactly ByteLevel (SentencePiece's Metaspace, Sequence decoders): the table's decode would not be the
 * tokenizer's, so the library tokenizer is loaded for decoding. Without one, one load here gives both.
 */
export function textOf(ckpt: Checkpoint, given: TokenTableData | undefined): { tokens: TokenTable; decoder: TokenDecoder } {
  const tok = given ? null : loadTokenizer(ckpt);
  const tokens = given ? new TokenTable(given) : TokenTable.fromTokenizer(tok!);
  return { tokens, decoder: tokens.byteLevelDecoder ? tokens : (tok ?? loadTokenizer(ckpt)) };
}

function loadTokenizer(ckpt: Checkpoint): TextTokenizer {
  if (!ckpt.tokenizerFile)
    throw new CheckpointError(
      `${ckpt.dir}: no tokenizer.json; realign needs the tokenizer to serve text`,
      ckpt.dir,
      'tokenizer.json',
    );
  return TextTokenizer.load(ckpt.tokenizerFile, ckpt.tokenizerConfigFile);
}
