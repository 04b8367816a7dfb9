/**
 * Bytes cut into pieces at given offsets, as a network might deliver them: the tests of
 * every incremental reader (SSE and NDJSON framers, the stream tap, the usage hider, the
 * secret redaction) feed the same bytes split anywhere and expect what the whole gives.
 */

/** `bytes` cut at `cuts` (offsets from 0 to its length, any order, repeats ignored); the pieces join back to `bytes`. */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts)].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let last = 0;
  for (const cut of points) {
    pieces.push(bytes.subarray(last, cut));
    last = cut;
  }
  pieces.push(bytes.subarray(last));
  return pieces;
}
