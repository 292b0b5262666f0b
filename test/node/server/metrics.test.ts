/** The backend's metrics registry (prom-client): types, process metrics, the forward-pass counter, separate registries. */
import { describe, expect, it } from 'vitest';
import { BackendMetrics } from '../../../gpu-backend/src/server/metrics.ts';

function sample(text: string, line: RegExp): number | undefined {
  const m = text.split('\n').find((l) => line.test(l));
  return m === undefined ? undefined : Number(m.slice(m.lastIndexOf(' ') + 1));
}

describe('BackendMetrics', () => {
  it('exposes realign’s metrics with their types beside Node’s process metrics', async () => {
    const m = new BackendMetrics();
    m.requests.inc({ route: '/v1/completions', status: '200' });
    m.promptTokens.inc({ branch: 'aligned', model: 'x' }, 7);
    m.queueDepth.set({ model: 'x' }, 2);
    m.stepSeconds.observe({ model: 'x' }, 0.003);
    const text = await m.render();
    for (const [name, type] of [
      ['realign_requests_total', 'counter'],
      ['realign_prompt_tokens_total', 'counter'],
      ['realign_completion_tokens_total', 'counter'],
      ['realign_forward_passes_total', 'counter'],
      ['realign_queue_depth', 'gauge'],
      ['realign_kv_bytes_allocated', 'gauge'],
      ['realign_step_seconds', 'histogram'],
      ['process_cpu_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
    ]) {
      expect(text, name).toContain(`# TYPE ${name} ${type}\n`);
    }
    expect(text).toContain('realign_requests_total{route="/v1/completions",status="200"} 1\n');
    expect(text).toContain('realign_prompt_tokens_total{branch="aligned",model="x"} 7\n');
    expect(text).toContain('realign_step_seconds_bucket{le="0.005",model="x"} 1\n');
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('the forward-pass counter follows the engine’s running total and never falls', async () => {
    const m = new BackendMetrics();
    const passes = async () => sample(await m.render(), /^realign_forward_passes_total\{model="x"\} /);
    m.forwardPassesSoFar('x', 5);
    expect(await passes()).toBe(5);
    m.forwardPassesSoFar('x', 12);
    m.forwardPassesSoFar('x', 12);
    expect(await passes()).toBe(12);
    m.forwardPassesSoFar('x', 3);
    expect(await passes()).toBe(12);
  });

  it('two backends in one process count apart', async () => {
    const a = new BackendMetrics();
    const b = new BackendMetrics();
    a.requests.inc({ route: '/healthz', status: '200' });
    expect(await a.render()).toContain('realign_requests_total{route="/healthz",status="200"} 1');
    expect(await b.render()).not.toContain('realign_requests_total{route="/healthz"');
  });
});
