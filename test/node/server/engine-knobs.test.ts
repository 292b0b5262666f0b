/** models.json's engine knobs reach the engine limits the worker thread starts with; bad values are refused. */
import { describe, expect, it } from 'vitest';
import { engineLimits, parseServerConfig } from '../../../gpu-backend/src/server/config.ts';

const model = (extra: Record<string, unknown>) =>
  parseServerConfig({ models: [{ id: 'm', mode: 'single', model: './m', ...extra }] }, '/tmp').models[0]!;

describe('engine knobs in models.json', () => {
  it('cuda_graphs, device_sampling, draw_thread, decode_loop_steps and prefill_chunk_tokens reach EngineLimits; unset leaves the device default', () => {
    const set = engineLimits(
      model({ cuda_graphs: 'off', device_sampling: 'on', draw_thread: 'off', decode_loop_steps: 4, prefill_chunk_tokens: 64 }),
    );
    expect(set).toMatchObject({
      cudaGraphs: 'off',
      deviceSampling: 'on',
      drawThread: 'off',
      decodeLoopSteps: 4,
      prefillChunkTokens: 64,
    });
    const unset = engineLimits(model({}));
    expect(unset.cudaGraphs).toBeUndefined();
    expect(unset.deviceSampling).toBe('auto');
    expect(unset.drawThread).toBe('auto');
    expect(unset.decodeLoopSteps).toBeUndefined();
    expect(unset.prefillChunkTokens).toBeUndefined();
  });

  it('a value outside auto|on|off is refused naming the key', () => {
    expect(() => model({ cuda_graphs: 'maybe' })).toThrow(/cuda_graphs/);
    expect(() => model({ device_sampling: true })).toThrow(/device_sampling/);
    expect(() => model({ draw_thread: 2 })).toThrow(/draw_thread/);
  });
});
