/** A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text format. */

type Labels = Record<string, string>;

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k].replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}
  abstract lines(): string[];
}

/** A monotonically increasing count per label set. */
export class Counter extends Metric {
  private readonly values = new Map<string, number>();
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  lines(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`);
  }
}

/** A value that goes up and down, per label set. */
export class Gauge extends Metric {
  private readonly values = new Map<string, number>();
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  set(labels: Labels, v: number): void {
    this.values.set(key(labels), v);
  }
  lines(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`);
  }
}

/** Observations in cumulative buckets, per label set. */
export class Histogram extends Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    readonly buckets: number[],
  ) {
    super(name, help, 'histogram');
  }
  observe(labels: Labels, v: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((b, i) => {
      if (v <= b) s.counts[i]++;
    });
    s.sum += v;
    s.count++;
  }
  lines(): string[] {
    const out: string[] = [];
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : '';
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{${sep}le="${b}"} ${s.counts[i]}`));
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return out;
  }
}

/** The backend's metrics. */
export class BackendMetrics {
  readonly requests = new Counter('realign_requests_total', 'HTTP requests by route and status');
  readonly promptTokens = new Counter('realign_prompt_tokens_total', 'Prompt tokens processed, per model and branch');
  readonly completionTokens = new Counter('realign_completion_tokens_total', 'Completion tokens generated, per model and branch');
  readonly batchSize = new Gauge('realign_batch_size', 'Sequences in the last decode step');
  readonly queueDepth = new Gauge('realign_queue_depth', 'Requests waiting for admission');
  readonly running = new Gauge('realign_running_sequences', 'Sequences being generated');
  readonly kvUsed = new Gauge('realign_kv_tokens_used', 'Tokens held in the KV caches');
  readonly kvBudget = new Gauge('realign_kv_tokens_budget', 'KV admission budget in tokens');
  readonly kvBytes = new Gauge('realign_kv_bytes_allocated', 'Bytes allocated for KV caches');
  readonly forwardPasses = new Gauge('realign_forward_passes', 'Forward passes run since start');
  readonly stepSeconds = new Histogram('realign_step_seconds', 'Duration of one engine run (prefill or decode step)', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  private readonly all: Metric[] = [this.requests, this.promptTokens, this.completionTokens, this.batchSize, this.queueDepth, this.running, this.kvUsed, this.kvBudget, this.kvBytes, this.forwardPasses, this.stepSeconds];

  /** The Prometheus text exposition. */
  render(): string {
    return this.all.map((m) => [`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.lines()].join('\n')).join('\n') + '\n';
  }
}
