/** Turns one benchmark run into summary.json, report.md and SVG plots. */
import type { BenchRun } from './run.ts';
import { barChart, lineChart } from './lib/svg.ts';
import { adaptersSection } from './adapters-bench.ts';
import { quantizedSection } from './quantized-report.ts';

/** Targets of issue 7 (a–d). */
export const TARGETS = { fusedVsNaiveB1: 1.6, inraOverheadB1: 1.3, oneBranchB1: 1.1, logits8vs1: 1.1 };

interface GpuDecode {
  batch: number;
  prefillTokensPerSecond: number;
  fusedStepMs: number;
  naiveStepMs: number;
  loopStepMs: number;
  loopSteps: number;
  kvBytes: number;
  kvCopyMs: number;
  kvCopyShareOfStep: number;
}
interface GpuResults {
  decode: GpuDecode[];
  correctness?: { lambda: number; relErr: number; argmaxEqual: boolean; top10Overlap: number }[];
  longPrefill?: { tokens: number; tokensPerSecond: number };
  weightsBytes: number;
  build?: { fusedMs: number };
  started: string;
}
interface TorchResults {
  gpu: string;
  torch: string;
  transformers: string;
  bandwidth_GBps: number;
  decode: { batch: number; step_ms: number; prefill_tokens_per_s: number }[];
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');

/** Builds the three outputs. */
export function renderReport(run: BenchRun) {
  const headline = run.graph.find((g) => g.preset === 'qwen2.5-0.5b') ?? run.graph[0];
  const oneBranch = (g: (typeof run.graph)[number], b: number) => Math.max(g.oneBranch[b].lambda0, g.oneBranch[b].lambda1);
  const gpu = run.gpu?.results as GpuResults | undefined;
  const torch = run.gpu?.torch as TorchResults | undefined;
  const gpuSummary = gpu
    ? Object.fromEntries(
        gpu.decode.flatMap((d) => {
          const t = torch?.decode.find((x) => x.batch === d.batch);
          return [
            [`gpu_step_ms_b${d.batch}`, d.fusedStepMs],
            [`gpu_loop_step_ms_b${d.batch}`, d.loopStepMs],
            [`gpu_kv_copy_share_b${d.batch}`, d.kvCopyShareOfStep],
            [`gpu_torch_step_ms_b${d.batch}`, t?.step_ms ?? null],
            [`gpu_torch_vs_realign_b${d.batch}`, t ? t.step_ms / Math.min(d.fusedStepMs, d.loopStepMs) : null],
          ];
        }),
      )
    : {};
  const floorMs = gpu && torch ? (gpu.weightsBytes / (torch.bandwidth_GBps * 1e9)) * 1000 : null;
  const summary = {
    date: run.date,
    machine: run.machine,
    fused_vs_naive_b1: headline.fusedVsNaive[1],
    inra_overhead_b1: headline.inraOverhead[1],
    onebranch_vs_single_b1: oneBranch(headline, 1),
    logits_8_vs_1: run.logits[0]?.ratio ?? null,
    ...(run.adapters ? { adapters_in_use_vs_one_b16: run.adapters.vsOneAdapter } : {}),
    ...(run.binding
      ? {
          binding_vs_old: Object.fromEntries(run.binding.batches.map((b) => [`b${b.batch}`, b.ratio])),
          binding_bytes_per_step: {
            batch: run.binding.bytesBatch,
            ...run.binding.bindingBytesPerStep,
            old_path: run.binding.oldBytesPerStep,
          },
        }
      : {}),
    engine_tokens_per_s: Object.fromEntries(run.engine.map((r) => [`b${r.batch}`, r.tokensPerSecond])),
    ...(run.prefill ? { prefill_whole_vs_chunked_max_gap: run.prefill.maxGapRatio } : {}),
    edge_overhead_ms_p50: run.serving?.edgeOverheadMsP50 ?? null,
    cache_hit_ms_p50: run.serving?.cacheHitMsP50 ?? null,
    headline_preset: headline.preset,
    per_preset: Object.fromEntries(
      run.graph.map((g) => [
        g.preset,
        { fused_vs_naive: g.fusedVsNaive, inra_overhead: g.inraOverhead, one_branch: g.oneBranch },
      ]),
    ),
    ...(gpu ? { gpu: { device: torch?.gpu ?? 'cuda', measured: gpu.started, floor_ms: floorMs, ...gpuSummary } } : {}),
  };

  const md: string[] = [];
  md.push(`# realign benchmarks — ${run.date.slice(0, 10)}`, '');
  md.push(
    `CPU: ${run.machine.cpu}, ${run.machine.cores} cores, ${run.machine.memoryGiB} GiB; Node ${run.machine.node}; onnxruntime-node ${run.machine.onnxruntime}.`,
  );
  md.push(
    'Every comparison was measured in one process, the variants in turn (A B A B …), and is reported as the median of the pairwise ratios; absolute CPU times are for orientation only (shared, noisy machine).',
    '',
  );
  md.push('| comparison | preset | value | target | |', '| --- | --- | --- | --- | --- |');
  for (const g of run.graph) {
    md.push(
      `| a. fused vs naive InRa decode throughput, batch 1 | ${g.preset} | ${f(g.fusedVsNaive[1])}× | ≥ ${TARGETS.fusedVsNaiveB1}× | ${verdict(g.fusedVsNaive[1] >= TARGETS.fusedVsNaiveB1)} |`,
    );
    md.push(
      `| b. InRa (λ = 0.5) step / single model step, batch 1 | ${g.preset} | ${f(g.inraOverhead[1])}× | ≤ ${TARGETS.inraOverheadB1}× | ${verdict(g.inraOverhead[1] <= TARGETS.inraOverheadB1)} |`,
    );
    md.push(
      `| c. one-branch rows (worse of λ = 0 and λ = 1) / single, batch 1 | ${g.preset} | ${f(oneBranch(g, 1))}× (λ=0 ${f(g.oneBranch[1].lambda0)}, λ=1 ${f(g.oneBranch[1].lambda1)}) | ≤ ${TARGETS.oneBranchB1}× | ${verdict(oneBranch(g, 1) <= TARGETS.oneBranchB1)} |`,
    );
  }
  for (const l of run.logits)
    md.push(
      `| d. /v1/logits with 8 λ / with 1 λ | ${l.preset} | ${f(l.ratio)}× | ≤ ${TARGETS.logits8vs1}× | ${verdict(l.ratio <= TARGETS.logits8vs1)} |`,
    );
  md.push('');
  md.push('## a–c: decode steps on the CPU (float32)', '');
  md.push('| preset | batch | variant | median ms/step | p10–p90 | tokens/s |', '| --- | --- | --- | --- | --- | --- |');
  for (const g of run.graph)
    for (const r of g.rows)
      md.push(
        `| ${r.preset} | ${r.batch} | ${r.variant} | ${f(r.timing.medianMs)} | ${f(r.timing.p10Ms)}–${f(r.timing.p90Ms)} | ${f(r.tokensPerSecond, 1)} |`,
      );
  md.push(
    '',
    '| preset | batch | fused vs naive | InRa overhead | λ=1 / single | λ=0 / single |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  for (const g of run.graph)
    for (const b of Object.keys(g.fusedVsNaive).map(Number))
      md.push(
        `| ${g.preset} | ${b} | ${f(g.fusedVsNaive[b])}× | ${f(g.inraOverhead[b])}× | ${f(g.oneBranch[b].lambda1)}× | ${f(g.oneBranch[b].lambda0)}× |`,
      );
  md.push('', '![decode throughput](decode-throughput.svg)', '');
  if (run.binding) {
    const b = run.binding;
    md.push(
      `## ONNX Runtime binding: realign's C API binding vs onnxruntime-node's JS API (${b.preset} InRa, λ = ${b.lambda}, ${b.promptTokens}-token prompts, CPU)`,
      '',
    );
    md.push(
      '| batch | binding ms/step | old path ms/step | binding / old (paired median) | target |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const r of b.batches)
      md.push(
        `| ${r.batch} | ${f(r.binding.medianMs)} | ${f(r.old.medianMs)} | ${f(r.ratio, 3)} | ≤ 1.02 ${verdict(r.ratio <= 1.02)} |`,
      );
    const inOut = b.bindingBytesPerStep;
    md.push(
      '',
      `Host↔device bytes per decode step at batch ${b.bytesBatch}, counted by the binding: ${inOut.toDevice} B in (token ids, lengths, λ, row maps), ${inOut.fromDevice} B out (the logits for the host sampler); the KV caches stay bound. The old path moved ${(b.oldBytesPerStep / 2 ** 20).toFixed(1)} MiB per step (its KV caches both ways). `,
      '',
    );
    const d = b.deviceSampling;
    if (d) {
      const bytes = d.bytesPerStep.toDevice + d.bytesPerStep.fromDevice;
      md.push(
        `With the sampling block in the step graph (device_sampling on; greedy and sampled rows, no logprobs asked): ${d.bytesPerStep.toDevice} B in, ${d.bytesPerStep.fromDevice} B out per decode step at batch ${b.bytesBatch} — ${bytes} B, target ≤ 64 KiB ${verdict(bytes <= 65536)}.`,
        '',
      );
      md.push(
        '| path | batch | greedy ms/step | sampled ms/step (T 0.8, top_p 0.9) | sampled / greedy | target | sampled / greedy, CPU time |',
        '| --- | --- | --- | --- | --- | --- | --- |',
      );
      const hostRows = b.hostSampling ?? [{ batch: b.bytesBatch, ...d.host }];
      for (const h of hostRows)
        md.push(
          `| host sampler (the CPU engine's path) | ${h.batch} | ${f(h.greedy.medianMs)} | ${f(h.sampled.medianMs)} | ${f(h.ratio, 3)} | ≤ 1.1 ${verdict(h.ratio <= 1.1)} | ${h.cpuRatio === undefined ? 'n/a' : f(h.cpuRatio, 3)} |`,
        );
      md.push(
        `| sampling block | ${b.bytesBatch} | ${f(d.device.greedy.medianMs)} | ${f(d.device.sampled.medianMs)} | ${f(d.device.ratio, 3)} | ≤ 1.1 ${verdict(d.device.ratio <= 1.1)} | n/a |`,
      );
      md.push(
        '',
        `${(100 * d.hostRowShare).toFixed(0)}% of the sampled rows were left to the host by the block (token −2: the random-weight model's nearly flat distribution puts more than the block's 1024 candidates in a top_p 0.9 nucleus), and those are sampled on the host from their logits row.`,
        '',
      );
    }
  }
  if (run.adapters) md.push(...adaptersSection(run.adapters), '');
  if (run.quantized || run.quantizedAccuracy?.toy || run.quantizedAccuracy?.agreement)
    md.push(...quantizedSection(run.quantized, run.quantizedAccuracy ?? {}), '');
  if (run.engine.length) {
    md.push('## Engine throughput (small preset, InRa at λ = 0.5, greedy, CPU)', '');
    md.push('| batch | new tokens | seconds | tokens/s | decode steps |', '| --- | --- | --- | --- | --- |');
    for (const r of run.engine)
      md.push(`| ${r.batch} | ${r.tokens} | ${f(r.seconds)} | ${f(r.tokensPerSecond, 1)} | ${r.decodeSteps} |`);
    md.push('');
  }
  if (run.prefill) {
    const p = run.prefill;
    md.push(
      `## Prefill beside running streams: chunked vs whole prompts (issue 14.5; ${p.preset} InRa, λ = 0.5, CPU)`,
      '',
      `${p.streams} greedy streams decode; a ${p.promptTokens}-token prompt arrives. The first stream's gaps between tokens from its arrival to its first token, medians of ${p.rows[0].rounds} rounds, the two engines in turn:`,
      '',
      '| prefill | longest gap ms | median gap ms | plain decode gap ms | long prompt first token ms | tokens per stream meanwhile |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const r of p.rows)
      md.push(
        `| ${r.chunkTokens > 0 ? `chunks of ${r.chunkTokens}` : 'whole prompt'} | ${f(r.maxGapMs, 0)} | ${f(r.medianGapMs, 0)} | ${f(r.baselineGapMs, 0)} | ${f(r.ttftMs, 0)} | ${f(r.streamTokensDuring, 1)} |`,
      );
    md.push('', `Longest gap, whole prompt / chunked (paired median): ${f(p.maxGapRatio)}×.`, '');
  }
  if (run.logits.length) {
    md.push('## d. many λ, one pass', '');
    for (const l of run.logits)
      md.push(
        `/v1/logits through the backend (${l.preset}, 48-word prompt, positions "last"): 1 λ ${f(l.one.medianMs)} ms, 8 λ ${f(l.eight.medianMs)} ms (medians) → ${f(l.ratio)}×.`,
      );
    md.push('');
  }
  if (run.serving) {
    const s = run.serving;
    md.push('## e. serving (small InRa model, λ = 0.5, streamed, 32 new tokens per request, loopback)', '');
    md.push(
      '| path | concurrency | requests | tokens/s | latency p50 / p99 ms | TTFT p50 / p99 ms | errors |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const r of s.rows)
      md.push(
        `| ${r.path} | ${r.concurrency} | ${r.requests} | ${f(r.tokensPerSecond, 1)} | ${f(r.latencyP50Ms, 0)} / ${f(r.latencyP99Ms, 0)} | ${f(r.ttftP50Ms, 0)} / ${f(r.ttftP99Ms, 0)} | ${r.errors} |`,
      );
    md.push(
      '',
      `Worker's added latency on a 1-token request (paired with the same request to the backend): p50 ${f(s.edgeOverheadMsP50)} ms (${f(s.edgeLatencyRatio)}× the backend's latency). Cache hit p50 ${f(s.cacheHitMsP50)} ms against ${f(s.cacheMissMsP50)} ms for a miss.`,
      '',
      '![serving](serving.svg)',
      '',
    );
  }
  if (gpu && torch) {
    md.push(
      `## f. GPU: ${torch.gpu}, r1-distill-qwen-1.5b shape, InRa (29 layers), float16 (measured ${gpu.started.slice(0, 16)})`,
      '',
    );
    md.push(
      `Weights generated on that machine by transformers ${torch.transformers} (PyTorch ${torch.torch}); the same checkpoints for both sides. Device memory bandwidth measured with a 2 GiB copy: ${f(torch.bandwidth_GBps, 0)} GB/s. One fused InRa step reads ${(gpu.weightsBytes / 1e9).toFixed(2)} GB of weights, so the floor is ${f(floorMs!)} ms per step.`,
      '',
    );
    if (gpu.correctness)
      md.push(
        `Logits of the float16 CUDA graph against transformers in float32 (last position of a 32-token prompt): ${gpu.correctness.map((c) => `λ = ${c.lambda}: relative error ${c.relErr.toExponential(1)}, same argmax ${c.argmaxEqual}, top-10 overlap ${c.top10Overlap}/10`).join('; ')}.`,
        '',
      );
    md.push(
      '| batch | step graph ms/step | KV copy share of a step | decode-loop ms/step (M steps per run) | naive layout ms/step | PyTorch eager dual-branch ms/step | PyTorch / realign (best) | prefill tokens/s (128-token prompts) |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const d of gpu.decode) {
      const t = torch.decode.find((x) => x.batch === d.batch);
      md.push(
        `| ${d.batch} | ${f(d.fusedStepMs, 1)} | ${(d.kvCopyShareOfStep * 100).toFixed(0)}% (${(d.kvBytes / 2 ** 20).toFixed(0)} MiB each way) | ${f(d.loopStepMs, 1)} (M = ${d.loopSteps}) | ${f(d.naiveStepMs, 1)} | ${t ? f(t.step_ms, 1) : 'n/a'} | ${t ? f(t.step_ms / Math.min(d.fusedStepMs, d.loopStepMs), 1) : 'n/a'}× | ${f(d.prefillTokensPerSecond, 0)} (PyTorch ${t ? f(t.prefill_tokens_per_s, 0) : 'n/a'}) |`,
      );
    }
    if (gpu.longPrefill)
      md.push('', `A single 1000-token prompt prefills at ${f(gpu.longPrefill.tokensPerSecond, 0)} tokens/s (both branches).`);
    const eng = run.gpu?.engine as Record<string, { batch: number; tokensPerSecond: number }[]> | undefined;
    if (eng?.loop0 && eng.loop16) {
      md.push(
        '',
        'Through the engine (worker thread, continuous batching; greedy, λ = 0.5, 128-token prompts, 64 new tokens each, prefill included), single-step runs against decode-loop runs of up to 16 steps:',
        '',
      );
      md.push('| batch | single-step runs tokens/s | decode-loop runs tokens/s | gain |', '| --- | --- | --- | --- |');
      for (const r of eng.loop0) {
        const l = eng.loop16.find((x) => x.batch === r.batch);
        if (l)
          md.push(
            `| ${r.batch} | ${f(r.tokensPerSecond, 1)} | ${f(l.tokensPerSecond, 1)} | ${f(l.tokensPerSecond / r.tokensPerSecond)}× |`,
          );
      }
    }
    const b1 = gpu.decode.find((d) => d.batch === 1);
    if (b1 && floorMs) {
      md.push(
        '',
        '**Reading the GPU numbers.** onnxruntime-node has no device-resident tensors, so a run of the step graph copies the whole KV cache to the GPU and back; the identity-graph measurement above shows that copy is most of a step (the share grows with the cache). The decode-loop graph runs M greedy steps inside one run, so the cache crosses once per M tokens, and the per-step time stops growing with the batch. It is still ' +
          `${f(b1.loopStepMs / floorMs, 0)}× above the weight-read floor at batch 1 (${f(b1.loopStepMs, 1)} ms against ${f(floorMs)} ms): at this size a step is a few hundred small kernels (29 layers × ~15 ops, plus the If/Loop control flow), launched one by one without CUDA graphs, which onnxruntime-node 1.29 does not expose. ` +
          'Sampled (non-greedy) batches use the step graph; sampling inside the loop would need per-row random streams on the device. PyTorch eager runs each branch as its own model (two full forward passes per step, as the original release does), dominated by Python and launch overhead at these batch sizes; its prefill is faster at large batch, where realign pays the KV copies of a prefill run.',
      );
    }
    md.push('', '![gpu](gpu.svg)', '');
  }
  const plots: Record<string, string> = {};
  const cats = run.graph.flatMap((g) => Object.keys(g.fusedVsNaive).map((b) => `${g.preset} b${b}`));
  const tps = (variant: string) =>
    run.graph.flatMap((g) =>
      Object.keys(g.fusedVsNaive).map(
        (b) => g.rows.find((r) => r.batch === Number(b) && r.variant === variant)?.tokensPerSecond ?? NaN,
      ),
    );
  plots['decode-throughput.svg'] = barChart({
    title: 'CPU decode throughput (tokens/s)',
    yLabel: 'tokens/s',
    categories: cats,
    series: ['single', 'inra λ=0.5', 'naive λ=0.5'].map((v) => ({ name: v, values: tps(v) })),
  });
  plots['ratios.svg'] = barChart({
    title: 'Ratios at batch 1 against their targets',
    yLabel: '×',
    categories: ['fused/naive (≥1.6)', 'InRa/single (≤1.3)', 'one branch/single (≤1.1)', 'logits 8λ/1λ (≤1.1)'],
    series: run.graph.map((g) => ({
      name: g.preset,
      values: [
        g.fusedVsNaive[1],
        g.inraOverhead[1],
        oneBranch(g, 1),
        run.logits.find((l) => l.preset === g.preset)?.ratio ?? NaN,
      ],
    })),
    hline: { value: 1, label: '1×' },
  });
  if (run.serving) {
    const conc = [...new Set(run.serving.rows.map((r) => r.concurrency))];
    plots['serving.svg'] = lineChart({
      title: 'Serving throughput',
      xLabel: 'concurrent streams',
      yLabel: 'tokens/s',
      x: conc,
      series: (['backend', 'edge'] as const).map((p) => ({
        name: p === 'edge' ? 'through the worker' : 'backend alone',
        values: conc.map((c) => run.serving!.rows.find((r) => r.path === p && r.concurrency === c)?.tokensPerSecond ?? NaN),
      })),
    });
  }
  if (gpu && torch) {
    plots['gpu.svg'] = barChart({
      title: `${torch.gpu}: ms per decode step (1.5B InRa, float16)`,
      yLabel: 'ms / step',
      categories: gpu.decode.map((d) => `batch ${d.batch}`),
      series: [
        { name: 'realign step graph', values: gpu.decode.map((d) => d.fusedStepMs) },
        { name: 'realign decode-loop', values: gpu.decode.map((d) => d.loopStepMs) },
        { name: 'PyTorch eager', values: gpu.decode.map((d) => torch.decode.find((x) => x.batch === d.batch)?.step_ms ?? NaN) },
      ],
      hline: floorMs ? { value: floorMs, label: `floor ${floorMs.toFixed(2)} ms` } : undefined,
    });
  }
  return { summary, markdown: md.join('\n') + '\n', plots };
}
