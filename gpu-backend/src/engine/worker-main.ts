/** Entry of the engine's worker thread: loads the model, runs the scheduler, talks to the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { chooseDevice, loadModel } from './model-loader.ts';
import type { EngineInit, FromWorker, ToWorker } from './protocol.ts';
import { Scheduler } from './scheduler.ts';

const port = parentPort;
if (!port) throw new Error('worker-main.ts runs as a worker thread');
const post = (m: FromWorker) => port.postMessage(m);

async function start(init: EngineInit): Promise<void> {
  // decode-loop runs pay off where a run's launch and sync overhead is large: on CUDA
  const chosen = await chooseDevice(init.device);
  const device = chosen.device;
  const limits = {
    ...init.limits,
    decodeLoopSteps: init.limits.decodeLoopSteps ?? (device === 'cuda' ? 16 : 0),
    // a chunk is about what keeps one decode step's wait short on each device (a 512-token chunk of a 1.5B model
    // is milliseconds on a GPU; on the CPU it would be seconds)
    prefillChunkTokens: init.limits.prefillChunkTokens ?? (device === 'cuda' ? 512 : 128),
  };
  // on CUDA the KV buffers are allocated once for a full batch (a sequence takes up to two rows of a group); on the
  // CPU they start small and double (untouched host pages cost nothing, but the row capacity is still bounded)
  const kvRows = device === 'cuda' ? 2 * limits.maxBatch : undefined;
  // sampling in the graph pays off where the logits would cross to the host: on CUDA (on the CPU the host is faster)
  const deviceSampling = limits.deviceSampling === 'on' || ((limits.deviceSampling ?? 'auto') === 'auto' && device === 'cuda');
  const model = await loadModel(init.source, {
    device: init.device,
    maxContext: init.maxContext,
    graphCache: init.graphCache,
    threads: init.threads,
    decodeLoop: limits.decodeLoopSteps > 1,
    kvRows,
    deviceSampling,
    cudaGraphs: limits.cudaGraphs,
    tokens: init.tokens,
    chosen,
  });
  const scheduler = new Scheduler(model, limits, {
    events: (events, stepMs) => post({ type: 'events', events, stats: scheduler.stats(), stepMs }),
    logits: (id, result) => post({ type: 'logits-result', id, result }),
    rejected: (id, error) => post({ type: 'rejected', id, error }),
  });
  port!.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'generate':
        return scheduler.submitGenerate(m.job);
      case 'logits':
        return scheduler.submitLogits(m.job);
      case 'cancel':
        return scheduler.cancel(m.id);
      case 'stats':
        return post({ type: 'stats', id: m.id, stats: scheduler.stats() });
      case 'shutdown':
        return scheduler.stop();
      case 'crash':
        return scheduler.crashAtNextTurn(m.code);
    }
  });
  post({
    type: 'ready',
    info: {
      device: model.device,
      deviceReason: model.deviceReason,
      mode: model.source.mode,
      vocabSize: model.vocabSize,
      maxContext: model.maxContext,
      eosTokenIds: model.eosTokenIds,
      buildMs: model.buildMs,
      ...(model.adapters.length > 0 ? { adapters: model.adapters } : {}),
    },
  });
  await scheduler.loop();
  await model.runner.release();
  port!.close();
}

start(workerData as EngineInit).catch((err: Error) => {
  post({ type: 'fatal', message: err.message });
  port.close();
});
