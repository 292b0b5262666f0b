import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bytesToFloat32, tensorByteLength, type StoredDType } from './dtype.ts';
import { CheckpointError } from './errors.ts';

/** Where one tensor's bytes are: a file and a byte range. */
export interface TensorEntry {
  name: string;
  dtype: StoredDType;
  shape: number[];
  file: string;
  /** absolute byte offset in `file` */
  offset: number;
  byteLength: number;
}

const SUPPORTED: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'I64']);

/** Parses the header of one `.safetensors` file and checks it against the file's size. */
export function readSafetensorsHeader(file: string): TensorEntry[] {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new CheckpointError(`${file}: truncated safetensors file (${size} bytes, no header)`, file);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > size - 8 || headerLen > 100_000_000) {
      throw new CheckpointError(
        `${file}: truncated or corrupt safetensors header (declares ${headerLen} bytes, file has ${size})`,
        file,
      );
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch {
      throw new CheckpointError(`${file}: safetensors header is not valid JSON`, file);
    }
    const base = 8 + headerLen;
    const entries: TensorEntry[] = [];
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      if (!SUPPORTED.has(info.dtype)) {
        throw new CheckpointError(
          `${file}: tensor "${name}" has dtype ${info.dtype}; supported: F32, F16, BF16, I64`,
          file,
          name,
        );
      }
      const dtype = info.dtype as StoredDType;
      const [start, end] = info.data_offsets;
      if (end - start !== tensorByteLength(dtype, info.shape)) {
        throw new CheckpointError(
          `${file}: tensor "${name}" byte range does not match shape [${info.shape}] ${dtype}`,
          file,
          name,
        );
      }
      if (base + end > size) {
        throw new CheckpointError(
          `${file}: truncated: tensor "${name}" ends at byte ${base + end}, file has ${size}`,
          file,
          name,
        );
      }
      entries.push({ name, dtype, shape: info.shape, file, offset: base + start, byteLength: end - start });
    }
    return entries;
  } finally {
    closeSync(fd);
  }
}

/** The tensors of a checkpoint folder: `model.safetensors`, or shards listed in `model.safetensors.index.json`. */
export class TensorStore {
  readonly entries: Map<string, TensorEntry>;

  private constructor(
    /** the file that lists the tensors: model.safetensors, the shard index, or a single file */
    readonly source: string,
    entries: TensorEntry[],
  ) {
    this.entries = new Map(entries.map((e) => [e.name, e]));
  }

  /** Opens one `.safetensors` file (headers only). */
  static openFile(file: string): TensorStore {
    return new TensorStore(file, readSafetensorsHeader(file));
  }

  /** Opens a folder's weights (headers only; no tensor data is read). */
  static open(dir: string): TensorStore {
    const single = join(dir, 'model.safetensors');
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) {
      let map: Record<string, string>;
      try {
        map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      } catch (err) {
        throw new CheckpointError(`${index}: cannot read shard index (${(err as Error).message})`, index);
      }
      const files = [...new Set(Object.values(map))];
      const all: TensorEntry[] = [];
      for (const f of files) {
        const path = join(dir, f);
        if (!existsSync(path)) throw new CheckpointError(`${index}: shard ${f} is listed but missing`, path);
        all.push(...readSafetensorsHeader(path));
      }
      return new TensorStore(index, all);
    }
    if (!existsSync(single)) {
      throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`, single);
    }
    return new TensorStore(single, readSafetensorsHeader(single));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry for `name`; the error names the tensor and the folder. */
  entry(name: string, expectShape?: readonly number[]): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(`${this.source}: missing tensor "${name}"`, this.source, name);
    if (expectShape && (e.shape.length !== expectShape.length || e.shape.some((d, i) => d !== expectShape[i]))) {
      throw new CheckpointError(`${e.file}: tensor "${name}" has shape [${e.shape}], expected [${expectShape}]`, e.file, name);
    }
    return e;
  }

  /** Raw bytes of a tensor, read from disk now (not cached). */
  readBytes(name: string, expectShape?: readonly number[]): { entry: TensorEntry; bytes: Uint8Array } {
    const entry = this.entry(name, expectShape);
    const bytes = new Uint8Array(entry.byteLength);
    const fd = openSync(entry.file, 'r');
    try {
      let done = 0;
      while (done < entry.byteLength) {
        const n = readSync(fd, bytes, done, entry.byteLength - done, entry.offset + done);
        if (n <= 0) throw new CheckpointError(`${entry.file}: truncated while reading "${name}"`, entry.file, name);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return { entry, bytes };
  }

  /** A tensor as float32, read from disk now (not cached). */
  readFloat32(name: string, expectShape?: readonly number[]): Float32Array {
    const { entry, bytes } = this.readBytes(name, expectShape);
    if (entry.dtype === 'I64')
      throw new CheckpointError(`${entry.file}: tensor "${name}" is I64, expected a float tensor`, entry.file, name);
    return bytesToFloat32(bytes, entry.dtype);
  }

  /** An int64 tensor as numbers (ids in fixtures). */
  readInt64(name: string): number[] {
    const { entry, bytes } = this.readBytes(name);
    if (entry.dtype !== 'I64')
      throw new CheckpointError(`${entry.file}: tensor "${name}" is ${entry.dtype}, expected I64`, entry.file, name);
    return Array.from(new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8), Number);
  }
}

/** A tensor to write: its header fields and a function producing its bytes when its turn comes. */
export interface TensorToWrite {
  name: string;
  dtype: StoredDType;
  shape: number[];
  /** Called once, in order; the bytes are written and dropped before the next tensor is produced. */
  bytes: () => Uint8Array;
}

/**
 * Writes a `.safetensors` file tensor by tensor, so that at most one tensor is in memory at a time.
 * The header is computed from shapes before any data is produced.
 */
export function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> = {},
  onTensor?: (i: number) => void,
): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const t of tensors) {
    const len = tensorByteLength(t.dtype, t.shape);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const headerBuf = Buffer.from(json, 'utf8');
  const fd = openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBuf.length));
    writeSync(fd, len);
    writeSync(fd, headerBuf);
    tensors.forEach((t, i) => {
      const data = t.bytes();
      const expected = tensorByteLength(t.dtype, t.shape);
      if (data.byteLength !== expected) {
        throw new CheckpointError(
          `${basename(file)}: tensor "${t.name}" produced ${data.byteLength} bytes, expected ${expected}`,
          file,
          t.name,
        );
      }
      writeAll(fd, data);
      onTensor?.(i);
    });
  } finally {
    closeSync(fd);
  }
}

/** Writes every byte (writeSync may write fewer than asked for large buffers). */
export function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += writeSync(fd, data, done, data.byteLength - done);
}
