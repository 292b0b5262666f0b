import { closeSync, openSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';
import { writeAll } from '../checkpoint/safetensors.ts';
import type { Attr, ElemType, Graph, Initializer, ValueInfo } from './ir.ts';
import { MS_DOMAIN, tensorBytes } from './ir.ts';

const { onnx } = onnxProto;

/** ONNX Runtime 1.29 reads IR ≤ 13 but the brief asks for ≤ 10; opset 21 is the newest ORT 1.29 fully implements. */
export const IR_VERSION = 10;
export const OPSET = 21;

const ELEM: Record<ElemType, O.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  float64: onnx.TensorProto.DataType.DOUBLE,
  uint8: onnx.TensorProto.DataType.UINT8,
};

/** Where an external-data model was written, and how big it is. */
export interface WrittenModel {
  modelPath: string;
  dataPath: string;
  dataBytes: number;
}

/**
 * Writes `graph` as `<dir>/<name>.onnx` with its external weights in `<name>.onnx.data`, producing each weight
 * only when it is written (weights are never all in memory). `onWeight` reports progress in bytes.
 */
export function writeOnnxModel(
  graph: Graph,
  dir: string,
  name: string,
  onWeight?: (done: number, total: number) => void,
): WrittenModel {
  const modelPath = join(dir, `${name}.onnx`);
  const dataPath = `${modelPath}.data`;
  const external = new Map<string, { offset: number; length: number }>();
  const all = collectInitializers(graph);
  const total = all.filter((t) => t.external).reduce((s, t) => s + tensorBytes(t.type, t.dims), 0);
  const fd = openSync(dataPath, 'w');
  let offset = 0;
  try {
    for (const init of all) {
      if (!init.external) continue;
      const bytes = typeof init.data === 'function' ? init.data() : init.data;
      const expected = tensorBytes(init.type, init.dims);
      if (bytes.byteLength !== expected)
        throw new Error(`weight ${init.name}: ${bytes.byteLength} bytes, expected ${expected} for [${init.dims}]`);
      const pad = (64 - (offset % 64)) % 64; // keep every tensor 64-byte aligned
      if (pad) writeAll(fd, new Uint8Array(pad));
      offset += pad;
      writeAll(fd, bytes);
      external.set(init.name, { offset, length: bytes.byteLength });
      offset += bytes.byteLength;
      onWeight?.(offset, total);
    }
  } finally {
    closeSync(fd);
  }
  const model = modelProto(
    graph,
    (init) => {
      const ext = external.get(init.name);
      return ext ? { location: basename(dataPath), ...ext } : null;
    },
    '0.1.0',
  );
  writeFileSync(modelPath, onnx.ModelProto.encode(model).finish());
  return { modelPath, dataPath, dataBytes: offset };
}

/** Serialises a graph in memory (every weight inline): for small test graphs. */
export function encodeOnnxModel(graph: Graph): Uint8Array {
  return onnx.ModelProto.encode(modelProto(graph, () => null)).finish();
}

/** The model around `graph`: IR version, opsets and producer (an absent `producerVersion` is not written). */
function modelProto(graph: Graph, externalOf: (init: Initializer) => ExternalRef, producerVersion?: string): O.ModelProto {
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'realign',
    producerVersion,
    opsetImport: [
      { domain: '', version: OPSET },
      { domain: MS_DOMAIN, version: 1 },
    ],
    graph: toGraphProto(graph, externalOf),
  });
}

function collectInitializers(graph: Graph): Initializer[] {
  const out = [...graph.initializers];
  for (const node of graph.nodes) {
    for (const a of Object.values(node.attributes)) if ('g' in a) out.push(...collectInitializers(a.g));
  }
  return out;
}

type ExternalRef = { location: string; offset: number; length: number } | null;

function toGraphProto(graph: Graph, externalOf: (init: Initializer) => ExternalRef): O.IGraphProto {
  return {
    name: graph.name,
    input: graph.inputs.map(valueInfo),
    output: graph.outputs.map(valueInfo),
    initializer: graph.initializers.map((init) => tensorProto(init, externalOf(init))),
    node: graph.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attributes).map(([k, v]) => attribute(k, v, externalOf)),
    })),
  };
}

function valueInfo(v: ValueInfo): O.IValueInfoProto {
  return {
    name: v.name,
    docString: v.doc,
    type: {
      tensorType: {
        elemType: ELEM[v.type],
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function tensorProto(init: Initializer, ext: ExternalRef): O.ITensorProto {
  const base = { name: init.name, dims: init.dims, dataType: ELEM[init.type] };
  if (ext) {
    return {
      ...base,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: ext.location },
        { key: 'offset', value: String(ext.offset) },
        { key: 'length', value: String(ext.length) },
      ],
    };
  }
  const data = typeof init.data === 'function' ? init.data() : init.data;
  return { ...base, rawData: data };
}

function attribute(name: string, a: Attr, externalOf: (init: Initializer) => ExternalRef): O.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('s' in a) return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: T.FLOATS, floats: a.floats };
  if ('g' in a) return { name, type: T.GRAPH, g: toGraphProto(a.g, externalOf) };
  return { name, type: T.TENSOR, t: tensorProto(a.t, null) };
}
