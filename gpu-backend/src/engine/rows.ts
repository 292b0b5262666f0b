/**
 * Which cache slots each sequence's branches occupy, and the step plans built from them. A sequence needs the
 * aligned branch unless λ = 0 and the reference branch unless λ = 1 (DESIGN.md: one-branch rows run one branch).
 * On a model of several named adapters (manifest.adapters) a sequence has one branch per adapter its mixes use
 * (each a row of group 0 and a row of that adapter's group) and the reference branch unless every mix is one
 * adapter at λ = 1; an output row is then a mix (a plain λ: the model's first adapter at that λ).
 */
import type { GraphManifest } from '../graph/model-graph.ts';
import type { GraphRunner, OutputRow, StepPlan } from './graph-runner.ts';
import { blendMix, mixTerms, type Blend } from './mix.ts';

/** The branches a set of λ values needs. */
export interface BranchNeeds {
  aligned: boolean;
  reference: boolean;
  /** multi-adapter models: the adapters with a branch (then `aligned` is false) */
  adapters?: string[];
}

/**
 * Branches needed to serve every blend in `blends` on the graph of `manifest` (λ values, or mixes on a model of
 * several adapters); `bothAlways`: every branch (the reference and, with several adapters, each adapter).
 */
export function needsFor(manifest: GraphManifest, blends: Blend[], bothAlways = false): BranchNeeds {
  if (!manifest.adapters) {
    if (blends.some((b) => typeof b !== 'number'))
      throw new Error('a mix of named adapters needs a model of several adapters; this one takes a λ');
    return branchesFor(manifest.mode, blends as number[], bothAlways);
  }
  const names = manifest.adapters.map((a) => a.name);
  if (bothAlways) return { aligned: false, reference: true, adapters: names };
  const used = new Set<string>();
  let reference = false;
  for (const b of blends) {
    const mix = blendMix(b, names[0]);
    const nonZero = Object.entries(mix).filter(([, l]) => l !== 0);
    for (const name of Object.keys(mix))
      if (!names.includes(name)) throw new Error(`the model has no adapter "${name}" (it has ${names.join(', ')})`);
    for (const [name] of nonZero) used.add(name);
    if (!(nonZero.length === 1 && nonZero[0][1] === 1)) reference = true;
  }
  return { aligned: false, reference, adapters: names.filter((n) => used.has(n)) };
}

/** Branch rows a sequence with these needs holds (one per branch). */
export function branchRowCount(needs: BranchNeeds): number {
  return (needs.aligned ? 1 : 0) + (needs.reference ? 1 : 0) + (needs.adapters?.length ?? 0);
}

/** Branches needed to serve every λ in `lambdas` (single-model graphs have one branch, called aligned). */
export function branchesFor(mode: GraphManifest['mode'], lambdas: number[], bothAlways = false): BranchNeeds {
  if (mode === 'single') return { aligned: true, reference: false };
  if (bothAlways) return { aligned: true, reference: true };
  return { aligned: lambdas.some((l) => l !== 0), reference: lambdas.some((l) => l !== 1) };
}

/** Slots of one branch of one sequence in the cache groups (group index → slot). */
type BranchSlots = Map<number, number>;

/** A sequence's place in the caches. */
export interface RowHandle {
  id: number;
  needs: BranchNeeds;
  aligned: BranchSlots | null;
  reference: BranchSlots | null;
  /** multi-adapter models: each adapter branch's slots (group 0 and the adapter's group) */
  adapters?: Map<string, BranchSlots>;
  /** tokens in the cache so far */
  length: number;
}

/** A branch of a sequence: aligned, reference, or `adapter:<name>` on a model of several adapters. */
type Branch = 'aligned' | 'reference' | `adapter:${string}`;

/** The slots of branch `b` of `h`. */
function slotsOf(h: RowHandle | undefined, b: Branch): BranchSlots | null | undefined {
  if (b === 'aligned' || b === 'reference') return h?.[b];
  return h?.adapters?.get(b.slice('adapter:'.length));
}

/** Every branch's slots of `h`. */
function allBranches(h: RowHandle): BranchSlots[] {
  return [h.aligned, h.reference, ...(h.adapters?.values() ?? [])].filter((b): b is BranchSlots => b !== null && b !== undefined);
}

/** A step plan together with the sequences it advances (in output order) and their lengths after it. */
export type SequencePlan = StepPlan & { handles: RowHandle[]; totalsBySeq: number[] };

/** Allocates cache slots for sequences and builds prefill and decode plans over them. */
export class RowAllocator {
  private readonly handles = new Map<number, RowHandle>();
  private nextId = 1;
  /** per group: slot → [handle id, branch] */
  private readonly owners: [number, Branch][][];

  constructor(private readonly runner: GraphRunner) {
    this.owners = runner.caches.map(() => []);
  }

  get manifest(): GraphManifest {
    return this.runner.manifest;
  }

  /** Reserves slots (at the end of each group) for a new sequence. */
  add(needs: BranchNeeds): RowHandle {
    const h: RowHandle = { id: this.nextId++, needs, aligned: null, reference: null, length: 0 };
    const layout = this.manifest.rowLayout;
    const take = (group: number, branch: Branch): number => {
      const slot = this.runner.caches[group].addRow();
      this.owners[group][slot] = [h.id, branch];
      return slot;
    };
    if (this.manifest.adapters) {
      // group 0: every branch row; group 1 + i: the rows of adapter i's branches
      h.adapters = new Map();
      for (const name of needs.adapters ?? []) {
        const i = this.manifest.adapters.findIndex((a) => a.name === name);
        if (i < 0) throw new Error(`the model has no adapter "${name}"`);
        const key: Branch = `adapter:${name}`;
        h.adapters.set(
          name,
          new Map([
            [0, take(0, key)],
            [1 + i, take(1 + i, key)],
          ]),
        );
      }
      if (needs.reference) h.reference = new Map([[0, take(0, 'reference')]]);
    } else if (layout === 'rows') {
      // group 0: every branch row; group 1 (inra only): the adapter rows of aligned branches
      if (needs.aligned) {
        h.aligned = new Map([[0, take(0, 'aligned')]]);
        if (this.manifest.mode === 'inra') h.aligned.set(1, take(1, 'aligned'));
      }
      if (needs.reference) h.reference = new Map([[0, take(0, 'reference')]]);
    } else {
      if (needs.aligned) h.aligned = new Map([[0, take(0, 'aligned')]]);
      if (needs.reference) h.reference = new Map([[1, take(1, 'reference')]]);
    }
    this.handles.set(h.id, h);
    return h;
  }

  /** Frees a sequence's slots, moving other rows into the holes. */
  remove(h: RowHandle): void {
    // free higher slots first so that a moved row never lands in a slot freed later in this call
    const frees: [number, number][] = [];
    for (const b of allBranches(h)) for (const [g, slot] of b) frees.push([g, slot]);
    frees.sort((a, b) => b[1] - a[1]);
    for (const [g, slot] of frees) {
      const moved = this.runner.caches[g].removeRow(slot);
      if (moved >= 0) {
        const [ownerId, branch] = this.owners[g][moved];
        this.owners[g][slot] = [ownerId, branch];
        slotsOf(this.handles.get(ownerId), branch)?.set(g, slot);
      }
      this.owners[g].length = this.runner.caches[g].size;
    }
    this.handles.delete(h.id);
  }

  /**
   * A prefill plan for sequences just added (their slots are the last ones of each group), each with its prompt
   * tokens; `outputs` per sequence are λ values or mixes (one output row each) and `allPositions` projects every
   * position.
   */
  prefillPlan(seqs: { handle: RowHandle; tokens: number[]; lambdas: Blend[] }[], allPositions = false): SequencePlan {
    const S = Math.max(...seqs.map((s) => s.tokens.length));
    return this.plan(
      seqs.map((s) => ({ handle: s.handle, tokens: s.tokens, total: s.tokens.length, lambdas: s.lambdas })),
      true,
      allPositions ? (_len) => Array.from({ length: S }, (_, i) => i) : (len) => [len - 1],
    );
  }

  /**
   * Plans for the next chunk of a prompt that is partly in the cache: `tokens` go after the `handle.length` tokens
   * the sequence holds, one plan per branch row (GroupQueryAttention takes more than one new token after a past
   * only for a batch of one row), each projecting its last new position at λ = 1 of that row, which nobody reads.
   * After running them all, `commitChunk`. (A first chunk, with no past, batches like any prefill: `prefillPlan`.)
   */
  chunkPlans(handle: RowHandle, tokens: number[]): SequencePlan[] {
    if (tokens.length === 0) throw new Error('chunk plan: no tokens');
    const total = handle.length + tokens.length;
    const rows: { h: RowHandle; blend: Blend }[] = [];
    if (handle.aligned) rows.push({ h: { ...handle, reference: null }, blend: 1 });
    if (handle.reference) rows.push({ h: { ...handle, aligned: null, adapters: new Map() }, blend: 0 });
    for (const [name, slots] of handle.adapters ?? [])
      rows.push({ h: { ...handle, reference: null, adapters: new Map([[name, slots]]) }, blend: { [name]: 1 } });
    return rows.map(({ h, blend }) => this.plan([{ handle: h, tokens, total, lambdas: [blend] }], true, (len) => [len - 1]));
  }

  /** After the plans of `chunkPlans(handle, tokens)` ran: the sequence holds `n` = tokens.length more tokens. */
  commitChunk(handle: RowHandle, n: number): void {
    handle.length += n;
  }

  /**
   * A decode plan over the sequences in `next` (each with its next token), in slot order. Sequences not in `next`
   * (prompts still being prefilled) must not sit between them: `arrangeAtEnd` keeps those at the end of each group.
   */
  decodePlan(next: Map<number, { token: number; lambdas: Blend[] }>): SequencePlan {
    const seqs: { handle: RowHandle; tokens: number[]; total: number; lambdas: Blend[] }[] = [];
    for (const [id, n] of next) {
      const handle = this.handles.get(id);
      if (!handle) throw new Error(`decode plan: no sequence ${id}`);
      seqs.push({ handle, tokens: [n.token], total: handle.length + 1, lambdas: n.lambdas });
    }
    if (seqs.length === 0) throw new Error('decode plan: no sequences');
    return this.plan(seqs, false, () => [0]);
  }

  /** Whether the rows of `handles` form one contiguous slot range in every group (as a step plan needs). */
  isContiguous(handles: RowHandle[]): boolean {
    return this.runner.caches.every((_, g) => {
      const slots = handles.flatMap((h) => allBranches(h).flatMap((b) => (b.has(g) ? [b.get(g)!] : [])));
      return slots.length === 0 || Math.max(...slots) - Math.min(...slots) + 1 === slots.length;
    });
  }

  /**
   * Moves the rows of `handles` to the last slots of every group (swapping rows inside the cache buffers; rows
   * already there stay), so that they form one contiguous range per group and the other sequences another one in
   * front of it. Returns the number of row swaps.
   */
  arrangeAtEnd(handles: RowHandle[]): number {
    const wanted = new Set(handles.map((h) => h.id));
    let swaps = 0;
    this.runner.caches.forEach((cache, g) => {
      const owners = this.owners[g];
      const n = cache.size;
      const count = owners.filter(([id]) => wanted.has(id)).length;
      // a wanted row in front of the tail swaps with an unwanted row inside the tail
      let tail = n - count;
      for (let slot = 0; slot < n - count; slot++) {
        if (!wanted.has(owners[slot][0])) continue;
        while (wanted.has(owners[tail][0])) tail++;
        this.swap(g, slot, tail);
        swaps++;
      }
    });
    return swaps;
  }

  private swap(g: number, a: number, b: number): void {
    this.runner.caches[g].swapRows(a, b);
    const owners = this.owners[g];
    [owners[a], owners[b]] = [owners[b], owners[a]];
    for (const slot of [a, b]) {
      const [id, branch] = owners[slot];
      slotsOf(this.handles.get(id), branch)?.set(g, slot);
    }
  }

  /** After a step: the sequences' lengths. */
  commit(plan: SequencePlan): void {
    plan.handles.forEach((h, i) => (h.length = plan.totalsBySeq[i]));
  }

  /** After a decode-loop run of `steps` steps from a decode plan. */
  commitSteps(plan: SequencePlan, steps: number): void {
    plan.handles.forEach((h, i) => (h.length = plan.totalsBySeq[i] + steps - 1));
  }

  private plan(
    seqs: { handle: RowHandle; tokens: number[]; total: number; lambdas: Blend[] }[],
    prefill: boolean,
    positionsFor: (len: number) => number[],
  ): SequencePlan {
    const layout = this.manifest.rowLayout;
    const groups = this.runner.caches.length;
    // the branch rows of the step: per group, a contiguous slot range covering the sequences' slots
    const slotsIn = (g: number) => seqs.flatMap((s) => allBranches(s.handle).flatMap((b) => (b.has(g) ? [b.get(g)!] : [])));
    const ranges = Array.from({ length: groups }, (_, g) => {
      const slots = slotsIn(g);
      if (slots.length === 0) return { start: this.runner.caches[g].size, count: 0 };
      const start = Math.min(...slots);
      const count = Math.max(...slots) - start + 1;
      if (count !== slots.length) throw new Error(`step rows of group ${g} are not contiguous`);
      return { start, count };
    });
    // branch-row index of (group, slot)
    const rowIndex = (g: number, slot: number) =>
      layout === 'rows' ? slot - ranges[0].start : g === 0 ? slot - ranges[0].start : ranges[0].count + slot - ranges[1].start;
    const R = layout === 'rows' ? ranges[0].count : ranges[0].count + ranges[1].count;
    const tokens: number[][] = new Array(R);
    const totals: number[] = new Array(R);
    const positions: number[][] = new Array(R);
    const outputs: OutputRow[] = [];
    const multi = this.manifest.adapters;
    const adapterRows: number[] = new Array(layout === 'rows' && groups > 1 && !multi ? ranges[1].count : 0);
    const adapterRowsBy = multi?.map((_, i) => new Array<number>(ranges[1 + i].count));
    for (const s of seqs) {
      const rowOf = (b: BranchSlots | null): number | null => {
        if (!b) return null;
        const g0 = layout === 'rows' ? 0 : b.has(0) ? 0 : 1;
        const r = rowIndex(g0, b.get(g0)!);
        tokens[r] = s.tokens;
        totals[r] = s.total;
        positions[r] = positionsFor(s.tokens.length);
        if (layout === 'rows' && groups > 1 && !multi && b.has(1)) adapterRows[b.get(1)! - ranges[1].start] = r;
        return r;
      };
      const a = rowOf(s.handle.aligned);
      const r = rowOf(s.handle.reference);
      if (multi) {
        const rowsOf = new Map<string, number>();
        for (const [name, b] of s.handle.adapters ?? []) {
          const i = multi.findIndex((x) => x.name === name);
          const row = rowOf(b)!;
          adapterRowsBy![i][b.get(1 + i)! - ranges[1 + i].start] = row;
          rowsOf.set(name, row);
        }
        for (const blend of s.lambdas) {
          const mix = blendMix(blend, multi[0].name);
          const terms = mixTerms(mix, r, (name) => {
            const row = rowsOf.get(name);
            if (row === undefined) throw new Error(`sequence ${s.handle.id} has no branch of adapter "${name}"`);
            return row;
          });
          const first = terms.find((t) => t.row !== r)?.row ?? r!;
          const lambda = terms.reduce((sum, t) => sum + (t.row === r ? 0 : t.weight), 0);
          outputs.push({ lambda, aligned: first, reference: r ?? first, terms });
        }
        continue;
      }
      for (const blend of s.lambdas) {
        if (typeof blend !== 'number') throw new Error('a mix of named adapters needs a model of several adapters');
        // a missing branch is never weighted: λ = 0 without aligned, λ = 1 without reference
        outputs.push({ lambda: blend, aligned: a ?? r!, reference: r ?? a! });
      }
    }
    return {
      ranges,
      tokens,
      totals,
      prefill,
      positions,
      adapterRows,
      ...(adapterRowsBy ? { adapterRowsBy } : {}),
      outputs,
      handles: seqs.map((s) => s.handle),
      totalsBySeq: seqs.map((s) => s.total),
    };
  }
}
