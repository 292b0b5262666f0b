/** Messages between the engine facade (main thread) and the engine worker thread. */
import type { SamplingParams } from '../sampling/params.ts';
import type { AdapterMix } from './mix.ts';
import type { TokenTableData } from '../text/token-table.ts';
import type { ModelSource } from './model-loader.ts';

/** A generation request as the engine takes it: tokens in, validated parameters. */
export interface GenerateJob {
  id: number;
  promptIds: number[];
  lambda: number;
  /** a model of several named adapters: the sequence's mix, in place of λ (absent: λ on the model's first adapter) */
  mix?: AdapterMix;
  params: SamplingParams;
  maxTokens: number;
  stop: string[];
  stopTokenIds: number[];
  /** EOS does not end the sequence */
  ignoreEos: boolean;
  skipSpecialTokens: boolean;
  /** separates the random streams of the n choices of one request */
  stream: number;
}

/** A blended-logits request: one forward pass, several λ. */
export interface LogitsJob {
  id: number;
  inputIds: number[];
  lambdas: number[];
  /** a model of several named adapters: mixes read out after the λ values (one blend each) */
  mixes?: AdapterMix[];
  positions: 'last' | 'all';
  topLogprobs: number;
  /** also return each branch's own log-probabilities */
  includeBranches: boolean;
}

/** One position's top tokens. */
export interface TopEntry {
  token: number;
  logprob: number;
}

/** Result of a logits job: per λ (then per branch), per position, the top tokens. */
export interface LogitsResult {
  positions: number[];
  blends: { lambda: number; mix?: AdapterMix; top: TopEntry[][] }[];
  /** with several named adapters `aligned` is the first adapter's branch and `adapters` has every adapter's */
  branches?: { aligned: TopEntry[][]; reference: TopEntry[][]; adapters?: Record<string, TopEntry[][]> };
  forwardPasses: number;
}

/** A generated token with what was asked about it. */
export interface TokenOut {
  id: number;
  logprob?: number;
  top?: TopEntry[];
}

/** Why a sequence ended. */
export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

/** Tokens counted per branch (a branch not computed counts zero). */
export interface BranchUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** One step's news for one sequence. */
export interface GenerateEvent {
  id: number;
  text: string;
  tokens: TokenOut[];
  finish?: FinishReason;
  error?: { message: string; code: string };
  usage?: {
    prompt_tokens: number;
    completion_tokens: number;
    aligned: BranchUsage;
    reference: BranchUsage;
    /** a model of several named adapters: the tokens each adapter's branch computed (`aligned`: any of them) */
    adapters?: Record<string, BranchUsage>;
  };
}

/** What the engine reports about itself. */
export interface EngineStats {
  /** sequences decoding */
  running: number;
  /** requests waiting for admission */
  queued: number;
  /** KV rows in the caches, all groups (an InRa aligned branch holds two: adapter and layers) */
  rows: number;
  /** tokens held in the KV caches (all groups) */
  kvTokensUsed: number;
  /** admission budget in branch-row tokens */
  kvTokensBudget: number;
  /** tokens reserved by admitted sequences (prompt + max_tokens per branch row) */
  kvTokensReserved: number;
  kvBytesAllocated: number;
  /** bytes the runs moved between host and device (inputs in, logits or tokens out; the KV caches stay on the device) */
  hostDeviceBytes: { toDevice: number; fromDevice: number; steps: number };
  forwardPasses: number;
  /** prefill runs (a later chunk of a prompt counts once, whatever its branch rows) */
  prefillSteps: number;
  /** prompt tokens written into the KV caches so far (per sequence, not per branch row) */
  prefilledTokens: number;
  /** running sequences whose prompt is still being prefilled */
  prefilling: number;
  decodeSteps: number;
  lastBatchSize: number;
  promptTokens: { aligned: number; reference: number };
  completionTokens: { aligned: number; reference: number };
}

/** Limits of one engine. */
export interface EngineLimits {
  /** sequences decoding at once */
  maxBatch: number;
  /** KV budget (tokens × branch rows reserved by running sequences) */
  maxKvTokens: number;
  /** requests waiting beyond which new ones are refused */
  maxQueue: number;
  /** padded prompt tokens in one prefill run */
  maxPrefillTokens: number;
  /**
   * chunked prefill: a prompt longer than this is written into the KV cache this many tokens per turn of the
   * scheduler, and while streams decode each turn prefills at most this many (padded) prompt positions beside their
   * decode step, so they wait about one chunk per token, not a whole prompt (see scheduler.ts). 0 turns it off
   * (whole prompts at admission); unset means 512 on CUDA and 128 on the CPU.
   */
  prefillChunkTokens?: number;
  /**
   * greedy decode steps per run when every running sequence is greedy (a decode-loop graph, loaded beside the
   * step graph): on CUDA each run copies the KV caches to the device and back, so M steps per run divide that by M.
   * 0 turns it off; unset means 16 on CUDA and 0 on the CPU (where the loop is slower).
   */
  decodeLoopSteps?: number;
  /**
   * tokens decided inside the step graph after the blend (graph/device-sampling.ts), so that per decode step only the
   * tokens and what the requests asked for cross between host and device; rows with logit_bias or penalties, and
   * rows the graph leaves to the host, are sampled on the host from their logits. 'auto' (unset): on for CUDA, off
   * on the CPU (where the host sampler is faster).
   */
  deviceSampling?: 'auto' | 'on' | 'off';
  /**
   * decode steps captured and replayed as CUDA graphs, one per batch-size bucket (engine/captured-steps.ts); 'auto':
   * on for CUDA where the model allows it. Unset: REALIGN_CUDA_GRAPHS, else 'auto'.
   */
  cudaGraphs?: 'auto' | 'on' | 'off';
  /**
   * draw threads for the host sampler's sampled rows (sampling/draw-pool.ts: one per core beside the engine thread,
   * at most 7), started at the first step with two such rows: 'auto' (unset) uses them where the machine has at least
   * two cores (while the host samples, ONNX Runtime's threads are idle).
   */
  drawThread?: 'auto' | 'on' | 'off';
}

/** Engine start-up options (sent to the worker). */
export interface EngineInit {
  source: ModelSource;
  device: 'auto' | 'cpu' | 'cuda';
  maxContext?: number;
  graphCache?: string;
  threads?: number;
  limits: EngineLimits;
  /**
   * the model's token table (text/token-table.ts), from the tokenizer thread that parsed tokenizer.json; its arrays
   * are shared, not copied, with the engine thread, which then does not parse tokenizer.json itself. Unset: the
   * engine thread loads the tokenizer.
   */
  tokens?: TokenTableData;
}

/** Main → worker. */
export type ToWorker =
  | { type: 'generate'; job: GenerateJob }
  | { type: 'logits'; job: LogitsJob }
  | { type: 'cancel'; id: number }
  | { type: 'stats'; id: number }
  | { type: 'shutdown' }
  /**
   * tests: the engine thread exits with `code` at the start of its next turn, without a word to the main thread, as a
   * crash would — but between runs (terminating the thread while an ONNX Runtime call is in flight can abort the
   * whole process: koffi's async completion into a terminated thread)
   */
  | { type: 'crash'; code: number };

/** What the worker says once its model is loaded. */
export interface EngineInfo {
  device: 'cpu' | 'cuda';
  deviceReason: string;
  mode: ModelSource['mode'];
  vocabSize: number;
  maxContext: number;
  eosTokenIds: number[];
  buildMs: number;
  /** inra: the model's named adapters, bottom first (one: a λ blend on it; several: per-row mixes); absent otherwise */
  adapters?: string[];
}

/** Worker → main. */
export type FromWorker =
  | { type: 'ready'; info: EngineInfo }
  | { type: 'events'; events: GenerateEvent[]; stats: EngineStats; stepMs: number[] }
  | { type: 'logits-result'; id: number; result: LogitsResult }
  | { type: 'rejected'; id: number; error: { message: string; code: string } }
  | { type: 'stats'; id: number; stats: EngineStats }
  | { type: 'fatal'; message: string };
