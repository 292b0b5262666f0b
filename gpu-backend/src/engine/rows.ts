/**
 * Which cache slots each sequence's branches occupy, and the step plans built from them. A sequence needs the
 * aligned branch unless λ = 0 and the reference branch unless λ = 1 (DESIGN.md: one-branch rows run one branch).
 */
import type { GraphManifest } from '../graph/model-graph.ts';
import type { GraphRunner, OutputRow, StepPlan } from './graph-runner.ts';

/** The branches a set of λ values needs. */
export interface BranchNeeds {
  aligned: boolean;
  reference: boolean;
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
  /** tokens in the cache so far */
  length: number;
}

/** A step plan together with the sequences it advances (in output order) and their lengths after it. */
export type SequencePlan = StepPlan & { handles: RowHandle[]; totalsBySeq: number[] };

/** Allocates cache slots for sequences and builds prefill and decode plans over them. */
export class RowAllocator {
  private readonly handles = new Map<number, RowHandle>();
  private nextId = 1;
  /** per group: slot → [handle id, branch] */
  private readonly owners: [number, 'aligned' | 'reference'][][];

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
    const take = (group: number, branch: 'aligned' | 'reference'): number => {
      const slot = this.runner.caches[group].addRow();
      this.owners[group][slot] = [h.id, branch];
      return slot;
    };
    if (layout === 'rows') {
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
    for (const b of [h.aligned, h.reference]) if (b) for (const [g, slot] of b) frees.push([g, slot]);
    frees.sort((a, b) => b[1] - a[1]);
    for (const [g, slot] of frees) {
      const moved = this.runner.caches[g].removeRow(slot);
      if (moved >= 0) {
        const [ownerId, branch] = this.owners[g][moved];
        this.owners[g][slot] = [ownerId, branch];
        const owner = this.handles.get(ownerId);
        owner?.[branch]?.set(g, slot);
      }
      this.owners[g].length = this.runner.caches[g].size;
    }
    this.handles.delete(h.id);
  }

  /**
   * A prefill plan for sequences just added (their slots are the last ones of each group), each with its prompt
   * tokens; `outputs` per sequence are λ values (one output row each) and `allPositions` projects every position.
   */
  prefillPlan(seqs: { handle: RowHandle; tokens: number[]; lambdas: number[] }[], allPositions = false): SequencePlan {
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
    const rows: RowHandle[] = [];
    if (handle.aligned) rows.push({ ...handle, reference: null });
    if (handle.reference) rows.push({ ...handle, aligned: null });
    return rows.map((h) => this.plan([{ handle: h, tokens, total, lambdas: [h.aligned ? 1 : 0] }], true, (len) => [len - 1]));
  }

  /** After the plans of `chunkPlans(handle, tokens)` ran: the sequence holds `n` = tokens.length more tokens. */
  commitChunk(handle: RowHandle, n: number): void {
    handle.length += n;
  }

  /**
   * A decode plan over the sequences in `next` (each with its next token), in slot order. Sequences not in `next`
   * (prompts still being prefilled) must not sit between them: `arrangeAtEnd` keeps those at the end of each group.
   */
  decodePlan(next: Map<number, { token: number; lambdas: number[] }>): SequencePlan {
    const seqs: { handle: RowHandle; tokens: number[]; total: number; lambdas: number[] }[] = [];
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
      const slots = handles.flatMap((h) => [h.aligned?.get(g), h.reference?.get(g)].filter((x): x is number => x !== undefined));
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
      this.handles.get(id)?.[branch]?.set(g, slot);
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
    seqs: { handle: RowHandle; tokens: number[]; total: number; lambdas: number[] }[],
    prefill: boolean,
    positionsFor: (len: number) => number[],
  ): SequencePlan {
    const layout = this.manifest.rowLayout;
    const groups = this.runner.caches.length;
    // the branch rows of the step: per group, a contiguous slot range covering the sequences' slots
    const slotsIn = (g: number) =>
      seqs.flatMap((s) => [s.handle.aligned?.get(g), s.handle.reference?.get(g)].filter((x): x is number => x !== undefined));
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
    const adapterRows: number[] = new Array(layout === 'rows' && groups > 1 ? ranges[1].count : 0);
    for (const s of seqs) {
      const rowOf = (b: BranchSlots | null): number | null => {
        if (!b) return null;
        const g0 = layout === 'rows' ? 0 : b.has(0) ? 0 : 1;
        const r = rowIndex(g0, b.get(g0)!);
        tokens[r] = s.tokens;
        totals[r] = s.total;
        positions[r] = positionsFor(s.tokens.length);
        if (layout === 'rows' && groups > 1 && b.has(1)) adapterRows[b.get(1)! - ranges[1].start] = r;
        return r;
      };
      const a = rowOf(s.handle.aligned);
      const r = rowOf(s.handle.reference);
      for (const lambda of s.lambdas) {
        // a missing branch is never weighted: λ = 0 without aligned, λ = 1 without reference
        outputs.push({ lambda, aligned: a ?? r!, reference: r ?? a! });
      }
    }
    return {
      ranges,
      tokens,
      totals,
      prefill,
      positions,
      adapterRows,
      outputs,
      handles: seqs.map((s) => s.handle),
      totalsBySeq: seqs.map((s) => s.total),
    };
  }
}
