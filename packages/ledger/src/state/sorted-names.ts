// The catalog's names in order, as a list of sorted blocks. One sorted array cost a move of every
// later name per insert: 200,000 creates of names that do not arrive in order took 10 s of apply
// time (measured with `pnpm bench:growth`), and the ledger keeps up to 1.1 million names.

/** Names per block: a block is split in two when it grows past this. */
const BLOCK = 512;

/** Strings in ascending UTF-16 order, no duplicates; insert and lower bound in O(log n + BLOCK). */
export class SortedNames {
  private blocks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The last name, if any. */
  last(): string | undefined {
    return this.blocks.at(-1)?.at(-1);
  }

  /** Add a name known to sort after every name present (a restore reads names in order). */
  push(name: string): void {
    const tail = this.blocks.at(-1);
    if (tail !== undefined && tail.length < BLOCK) tail.push(name);
    else this.blocks.push([name]);
    this.count += 1;
  }

  /** Add a name not present. */
  insert(name: string): void {
    if (this.blocks.length === 0) {
      this.push(name);
      return;
    }
    const b = this.blockFor(name);
    const block = this.blocks[b]!;
    block.splice(lowerBound(block, name), 0, name);
    this.count += 1;
    if (block.length > BLOCK) this.blocks.splice(b + 1, 0, block.splice(BLOCK >> 1));
  }

  /** Names >= `from` (or > `from` when `exclusive`), in order. */
  *from(from: string | undefined, exclusive = false): IterableIterator<string> {
    let b = from === undefined ? 0 : this.blockFor(from);
    let i = from === undefined ? 0 : lowerBound(this.blocks[b] ?? [], from);
    for (; b < this.blocks.length; b++, i = 0) {
      const block = this.blocks[b]!;
      for (; i < block.length; i++) {
        const name = block[i]!;
        if (exclusive && name === from) continue;
        yield name;
      }
    }
  }

  [Symbol.iterator](): IterableIterator<string> {
    return this.from(undefined);
  }

  /** Every name in one array (a snapshot's fixed view of the catalog). */
  toArray(): string[] {
    return this.blocks.flat();
  }

  /** The block where `name` is or would be inserted: the last whose first name is <= it. */
  private blockFor(name: string): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.blocks[mid]![0]! <= name) lo = mid + 1;
      else hi = mid;
    }
    return Math.max(0, lo - 1);
  }
}

/** Index of the first element >= `name` in a sorted array. */
export function lowerBound(a: readonly string[], name: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
