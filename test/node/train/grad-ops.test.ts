import { describe, expect, it } from 'vitest';
import { Graph } from '../../../gpu-backend/src/graph/ir.ts';
import { gradCheck } from '../../../gpu-backend/src/train/autodiff/gradcheck.ts';
import { NormalStream } from '../../../gpu-backend/src/random/normal.ts';
import type { HostTensor } from '../../../gpu-backend/src/ort/session.ts';
import { testSeed } from '../helpers/models.ts';

// Tolerance: float64 graphs, central differences with ε = 1e-6; the error is max |analytic − numeric| over the
// elements divided by max |numeric|. Truncation (ε²) and rounding (1e-16/ε) errors are both far below 1e-7.
const TOL = 1e-7;

type Dims = (number | string)[];
interface Case {
  name: string;
  /** differentiable float64 inputs: [name, declared dims, actual dims, values ('pos' keeps them in [0.5, 1.5])] */
  inputs: [string, Dims, number[], 'any' | 'pos'][];
  build: (g: Graph, x: string[]) => string;
}

const c64 = (g: Graph, v: number[], dims?: number[]) => g.constant('float64', v, dims);
const i64 = (g: Graph, v: number[], dims?: number[]) => g.constant('int64', v, dims);

const cases: Case[] = [
  {
    name: 'Add with a broadcast bias',
    inputs: [
      ['a', [2, 3, 4], [2, 3, 4], 'any'],
      ['b', [4], [4], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Add', [a, b], {}, '/Add'),
  },
  {
    name: 'Add with a kept size-1 axis',
    inputs: [
      ['a', [2, 3, 4], [2, 3, 4], 'any'],
      ['b', [2, 1, 4], [2, 1, 4], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Add', [a, b], {}, '/Add'),
  },
  {
    name: 'Add with broadcast axes found at run time',
    inputs: [
      ['a', ['n', 'k'], [3, 4], 'any'],
      ['b', ['m'], [4], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Add', [a, b], {}, '/Add'),
  },
  {
    name: 'Sub',
    inputs: [
      ['a', [3, 4], [3, 4], 'any'],
      ['b', [3, 1], [3, 1], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Sub', [a, b], {}, '/Sub'),
  },
  {
    name: 'Mul',
    inputs: [
      ['a', [2, 3, 4], [2, 3, 4], 'any'],
      ['b', [3, 1], [3, 1], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Mul', [a, b], {}, '/Mul'),
  },
  {
    name: 'Mul of a value with itself',
    inputs: [['a', [3, 4], [3, 4], 'any']],
    build: (g, [a]) => g.op1('Mul', [a, a], {}, '/Mul'),
  },
  {
    name: 'Div',
    inputs: [
      ['a', [2, 3], [2, 3], 'any'],
      ['b', [2, 3], [2, 3], 'pos'],
    ],
    build: (g, [a, b]) => g.op1('Div', [a, b], {}, '/Div'),
  },
  {
    name: 'Pow with a constant exponent',
    inputs: [['a', [5], [5], 'pos']],
    build: (g, [a]) => g.op1('Pow', [a, c64(g, [3], [])], {}, '/Pow'),
  },
  { name: 'Neg', inputs: [['a', [5], [5], 'any']], build: (g, [a]) => g.op1('Neg', [a], {}, '/Neg') },
  { name: 'Identity', inputs: [['a', [5], [5], 'any']], build: (g, [a]) => g.op1('Identity', [a], {}, '/Identity') },
  {
    name: 'Cast to the same float type',
    inputs: [['a', [5], [5], 'any']],
    build: (g, [a]) => g.op1('Cast', [a], { to: { i: 11 } }, '/Cast'),
  },
  { name: 'Sqrt', inputs: [['a', [5], [5], 'pos']], build: (g, [a]) => g.op1('Sqrt', [a], {}, '/Sqrt') },
  { name: 'Reciprocal', inputs: [['a', [5], [5], 'pos']], build: (g, [a]) => g.op1('Reciprocal', [a], {}, '/Reciprocal') },
  { name: 'Exp', inputs: [['a', [5], [5], 'any']], build: (g, [a]) => g.op1('Exp', [a], {}, '/Exp') },
  { name: 'Log', inputs: [['a', [5], [5], 'pos']], build: (g, [a]) => g.op1('Log', [a], {}, '/Log') },
  { name: 'Sigmoid', inputs: [['a', [5], [5], 'any']], build: (g, [a]) => g.op1('Sigmoid', [a], {}, '/Sigmoid') },
  { name: 'Tanh', inputs: [['a', [5], [5], 'any']], build: (g, [a]) => g.op1('Tanh', [a], {}, '/Tanh') },
  {
    name: 'Softmax over the last axis',
    inputs: [['a', [2, 3, 4], [2, 3, 4], 'any']],
    build: (g, [a]) => g.op1('Softmax', [a], { axis: { i: -1 } }, '/Softmax'),
  },
  {
    name: 'Softmax over a middle axis',
    inputs: [['a', [2, 3, 4], [2, 3, 4], 'any']],
    build: (g, [a]) => g.op1('Softmax', [a], { axis: { i: 1 } }, '/Softmax'),
  },
  {
    name: 'LogSoftmax',
    inputs: [['a', [2, 6], [2, 6], 'any']],
    build: (g, [a]) => g.op1('LogSoftmax', [a], { axis: { i: -1 } }, '/LogSoftmax'),
  },
  {
    name: 'Where (both branches, one broadcast)',
    inputs: [
      ['a', [3, 4], [3, 4], 'any'],
      ['b', [4], [4], 'any'],
    ],
    build: (g, [a, b]) => {
      const cond = g.op1(
        'Greater',
        [g.constant('float64', [0.3, -1, 2, 0.1, -0.2, 1, 1, -3, 0.5, 0.6, -0.7, 0], [3, 4]), c64(g, [0], [])],
        {},
        '/cond',
      );
      return g.op1('Where', [cond, a, b], {}, '/Where');
    },
  },
  {
    name: 'MatMul of activations with a weight',
    inputs: [
      ['a', [2, 3, 4], [2, 3, 4], 'any'],
      ['w', [4, 5], [4, 5], 'any'],
    ],
    build: (g, [a, w]) => g.op1('MatMul', [a, w], {}, '/MatMul'),
  },
  {
    name: 'MatMul batched',
    inputs: [
      ['a', [2, 3, 4, 5], [2, 3, 4, 5], 'any'],
      ['b', [2, 3, 5, 2], [2, 3, 5, 2], 'any'],
    ],
    build: (g, [a, b]) => g.op1('MatMul', [a, b], {}, '/MatMul'),
  },
  {
    name: 'MatMul with broadcast batch axes',
    inputs: [
      ['a', [2, 1, 3, 4], [2, 1, 3, 4], 'any'],
      ['b', [3, 4, 2], [3, 4, 2], 'any'],
    ],
    build: (g, [a, b]) => g.op1('MatMul', [a, b], {}, '/MatMul'),
  },
  {
    name: 'Transpose',
    inputs: [['a', [2, 3, 4, 5], [2, 3, 4, 5], 'any']],
    build: (g, [a]) => g.op1('Transpose', [a], { perm: { ints: [0, 2, 1, 3] } }, '/Transpose'),
  },
  {
    name: 'Reshape with copied and inferred dims',
    inputs: [['a', [2, 3, 4], [2, 3, 4], 'any']],
    build: (g, [a]) => g.op1('Reshape', [a, i64(g, [0, -1, 2])], {}, '/Reshape'),
  },
  {
    name: 'Unsqueeze',
    inputs: [['a', [2, 3], [2, 3], 'any']],
    build: (g, [a]) => g.op1('Unsqueeze', [a, i64(g, [1, -1])], {}, '/Unsqueeze'),
  },
  {
    name: 'Squeeze',
    inputs: [['a', [2, 1, 3], [2, 1, 3], 'any']],
    build: (g, [a]) => g.op1('Squeeze', [a, i64(g, [1])], {}, '/Squeeze'),
  },
  {
    name: 'Expand (repeat KV heads)',
    inputs: [['a', [2, 1, 3, 1, 4], [2, 1, 3, 1, 4], 'any']],
    build: (g, [a]) => g.op1('Expand', [a, i64(g, [1, 1, 1, 2, 1])], {}, '/Expand'),
  },
  {
    name: 'Gather along axis 0 (embedding, repeated ids)',
    inputs: [['w', [5, 3], [5, 3], 'any']],
    build: (g, [w]) => g.op1('Gather', [w, i64(g, [2, 4, 2, 0], [2, 2])], { axis: { i: 0 } }, '/Gather'),
  },
  {
    name: 'GatherElements',
    inputs: [['a', [2, 3, 5], [2, 3, 5], 'any']],
    build: (g, [a]) =>
      g.op1('GatherElements', [a, i64(g, [0, 4, 2, 1, 1, 3], [2, 3, 1])], { axis: { i: -1 } }, '/GatherElements'),
  },
  {
    name: 'ReduceSum without kept axes',
    inputs: [['a', [2, 3, 4], [2, 3, 4], 'any']],
    build: (g, [a]) => g.op1('ReduceSum', [a, i64(g, [1])], { keepdims: { i: 0 } }, '/ReduceSum'),
  },
  {
    name: 'ReduceMean with kept axes',
    inputs: [['a', [2, 3, 4], [2, 3, 4], 'any']],
    build: (g, [a]) => g.op1('ReduceMean', [a, i64(g, [-1])], { keepdims: { i: 1 } }, '/ReduceMean'),
  },
  {
    name: 'ReduceMean over a symbolic axis',
    inputs: [['a', ['n', 'k'], [3, 4], 'any']],
    build: (g, [a]) => g.op1('ReduceMean', [a, i64(g, [-1])], { keepdims: { i: 1 } }, '/ReduceMean'),
  },
  {
    name: 'Concat',
    inputs: [
      ['a', [2, 3], [2, 3], 'any'],
      ['b', [2, 2], [2, 2], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Concat', [a, b], { axis: { i: 1 } }, '/Concat'),
  },
  {
    name: 'Concat with run-time sizes',
    inputs: [
      ['a', [2, 'x'], [2, 3], 'any'],
      ['b', [2, 'y'], [2, 2], 'any'],
    ],
    build: (g, [a, b]) => g.op1('Concat', [a, b], { axis: { i: -1 } }, '/Concat'),
  },
  {
    name: 'Split with an unused output',
    inputs: [['a', [2, 6], [2, 6], 'any']],
    build: (g, [a]) => g.op('Split', [a, i64(g, [1, 2, 3])], { axis: { i: 1 } }, { name: '/Split', outputs: 3 })[2],
  },
  {
    name: 'Slice',
    inputs: [['a', [2, 'k'], [2, 6], 'any']],
    build: (g, [a]) => g.op1('Slice', [a, i64(g, [1]), i64(g, [4]), i64(g, [-1])], {}, '/Slice'),
  },
];

describe('gradient rules against central finite differences (float64)', () => {
  const seed = testSeed();
  it.each(cases)(`$name (seed ${seed})`, async ({ inputs, build }) => {
    const rng = new NormalStream(seed);
    const g = new Graph('check');
    const names = inputs.map(([n, dims]) => g.input(n, 'float64', dims));
    const y = build(g, names);
    // loss = Σ y ⊙ R with a fixed random R, so that every element of dY differs
    const yDims = await outputDims(build, inputs);
    const r = g.constant(
      'float64',
      Array.from({ length: yDims.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      yDims,
    );
    const loss = g.op1('ReduceSum', [g.op1('Mul', [y, r], {}, '/loss/Mul')], { keepdims: { i: 0 } }, '/loss/ReduceSum');
    const feeds: Record<string, HostTensor> = {};
    for (const [n, , dims, kind] of inputs) {
      const count = dims.reduce((a, b) => a * b, 1);
      feeds[n] = {
        type: 'float64',
        data: Float64Array.from({ length: count }, () => (kind === 'pos' ? 0.5 + rng.uniform() : rng.normal())),
        dims,
      };
    }
    const results = await gradCheck(g, loss, feeds, names);
    for (const res of results) {
      expect(
        res.analytic.some((v) => v !== 0),
        `${res.name}: gradient is all zeros`,
      ).toBe(true);
      expect(res.relErr, `${res.name}`).toBeLessThan(TOL);
    }
  });
});

/** Runs the forward op alone once to learn its output's dims. */
async function outputDims(build: Case['build'], inputs: Case['inputs']): Promise<number[]> {
  const { ModelSession } = await import('../../../gpu-backend/src/ort/session.ts');
  const { encodeOnnxModel } = await import('../../../gpu-backend/src/graph/onnx-writer.ts');
  const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const g = new Graph('probe');
  const names = inputs.map(([n, dims]) => g.input(n, 'float64', dims));
  g.output(build(g, names), 'y', 'float64', ['?']);
  const dir = mkdtempSync(join(tmpdir(), 'realign-probe-'));
  try {
    writeFileSync(join(dir, 'p.onnx'), encodeOnnxModel(g));
    const s = await ModelSession.open(join(dir, 'p.onnx'), { device: 'cpu', threads: 1 });
    const feeds: Record<string, HostTensor> = {};
    for (const [n, , dims] of inputs)
      feeds[n] = { type: 'float64', data: new Float64Array(dims.reduce((a, b) => a * b, 1)).fill(1), dims };
    const out = await s.run(feeds, ['y']);
    await s.release();
    return out.y.dims;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
