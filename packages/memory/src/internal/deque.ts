/** FIFO with O(1) amortised push, shift and unshift (arrays shift in O(n)). */
export class Deque<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** Binary min-heap ordered by `key`, ties broken by insertion order. */
export class MinHeap<T> {
  readonly #heap: { key: number; seq: number; value: T }[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  peekKey(): number | undefined {
    return this.#heap[0]?.key;
  }

  push(key: number, value: T): void {
    const heap = this.#heap;
    heap.push({ key, seq: this.#seq++, value });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  pop(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < heap.length && this.#less(l, smallest)) smallest = l;
        if (r < heap.length && this.#less(r, smallest)) smallest = r;
        if (smallest === i) break;
        this.#swap(i, smallest);
        i = smallest;
      }
    }
    return top.value;
  }

  clear(): void {
    this.#heap.length = 0;
  }

  #less(a: number, b: number): boolean {
    const x = this.#heap[a] as { key: number; seq: number };
    const y = this.#heap[b] as { key: number; seq: number };
    return x.key < y.key || (x.key === y.key && x.seq < y.seq);
  }

  #swap(a: number, b: number): void {
    const heap = this.#heap;
    const t = heap[a] as (typeof heap)[number];
    heap[a] = heap[b] as (typeof heap)[number];
    heap[b] = t;
  }
}
