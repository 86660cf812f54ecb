/**
 * Reading a delivery's ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>`,
 * or on newer servers with a domain and an account hash after `ACK` and a random token at the end.
 */

/** Dot positions of the ack subject being parsed (one buffer for all: parsing is synchronous). */
const dots = new Int32Array(16);

/**
 * Finds the dots of an ack subject (into `dots`) and returns the index of its `<delivered>` token,
 * which the stream sequence follows; -1 when the subject has neither form. Token `i` ends at
 * `dots[i]` and starts after `dots[i - 1]`.
 */
export function deliveredIndex(reply: string): number {
  // Hot path (once per delivery): the dot positions by indexOf (faster than a charCodeAt loop), no split.
  let count = 0;
  for (let i = reply.indexOf("."); i >= 0; i = reply.indexOf(".", i + 1)) {
    if (count === dots.length) return -1;
    dots[count++] = i;
  }
  // 9 tokens (8 dots): the v1 form; otherwise the newer form has one token more at the end.
  const index = count - 4 - (count === 8 && reply.startsWith("$JS.ACK.") ? 0 : 1);
  return index >= 1 ? index : -1;
}

/** Token `index` of the subject whose dots `deliveredIndex` just found (never the last token). */
export function tokenAt(reply: string, index: number): string {
  return reply.slice((dots[index - 1] as number) + 1, dots[index]);
}

/** Stream sequence of a delivery, from its ack subject ("" when unreadable). */
export function sequenceOf(reply: string): string {
  const index = deliveredIndex(reply);
  return index < 0 ? "" : tokenAt(reply, index + 1);
}
