/**
 * The backend's Prometheus metrics on prom-client, in a registry of their own (one per backend, so that backends
 * in one process do not share counts), with Node's process metrics (CPU, memory, event-loop lag, GC, handles)
 * beside realign's. prom-client prints labels in the order of the label object's keys: callers pass them in the
 * order of `labelNames` (alphabetical).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The backend's metrics. */
export class BackendMetrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  readonly requests = new Counter({
    name: 'realign_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: this.registers,
  });
  readonly promptTokens = new Counter({
    name: 'realign_prompt_tokens_total',
    help: 'Prompt tokens processed, per model and branch',
    labelNames: ['branch', 'model'] as const,
    registers: this.registers,
  });
  readonly completionTokens = new Counter({
    name: 'realign_completion_tokens_total',
    help: 'Completion tokens generated, per model and branch',
    labelNames: ['branch', 'model'] as const,
    registers: this.registers,
  });
  readonly batchSize = this.modelGauge('realign_batch_size', 'Sequences in the last decode step');
  readonly queueDepth = this.modelGauge('realign_queue_depth', 'Requests waiting for admission');
  readonly running = this.modelGauge('realign_running_sequences', 'Sequences being generated');
  readonly kvUsed = this.modelGauge('realign_kv_tokens_used', 'Tokens held in the KV caches');
  readonly kvBudget = this.modelGauge('realign_kv_tokens_budget', 'KV admission budget in tokens');
  readonly kvBytes = this.modelGauge('realign_kv_bytes_allocated', 'Bytes allocated for KV caches');
  /** A counter: the engine's running total only rises (see {@link forwardPassesSoFar}). */
  private readonly forwardPasses = new Counter({
    name: 'realign_forward_passes_total',
    help: 'Forward passes run since start',
    labelNames: ['model'] as const,
    registers: this.registers,
  });
  readonly stepSeconds = new Histogram({
    name: 'realign_step_seconds',
    help: 'Duration of one engine run (prefill or decode step)',
    labelNames: ['model'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: this.registers,
  });
  /** The forward passes counted so far per model: the engine reports a total, the counter is raised by the rest. */
  private readonly passesSeen = new Map<string, number>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  private modelGauge(name: string, help: string): Gauge<'model'> {
    return new Gauge({ name, help, labelNames: ['model'] as const, registers: this.registers });
  }

  /** Raises the forward-pass counter of `model` to the engine's running total `total`. */
  forwardPassesSoFar(model: string, total: number): void {
    const seen = this.passesSeen.get(model) ?? 0;
    if (total > seen) this.forwardPasses.inc({ model }, total - seen);
    this.passesSeen.set(model, Math.max(seen, total));
  }

  /** The `Content-Type` of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
