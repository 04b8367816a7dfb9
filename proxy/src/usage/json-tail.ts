/**
 * Metering for a JSON answer too large to parse in memory (over max_json_response_bytes):
 * every dialect writes its usage at the end of the body (OpenAI and Anthropic `usage`,
 * Gemini `usageMetadata`, Ollama's `prompt_eval_count`/`eval_count`), so the last bytes of
 * the body are kept in a bounded tail and the usage is read from there. Without it a huge
 * answer was booked as 0 output tokens.
 */

/** How much of a body's end is kept; usage objects are a few hundred bytes. */
export const TAIL_BYTES = 64 * 1024;

/** Keeps the last TAIL_BYTES of a byte stream without holding more than twice that. */
export class ByteTail {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > 2 * TAIL_BYTES) {
      const joined = Buffer.concat(this.chunks, this.size);
      const kept = Buffer.from(joined.subarray(joined.length - TAIL_BYTES));
      this.chunks = [kept];
      this.size = kept.length;
    }
  }

  bytes(): Buffer {
    const joined = Buffer.concat(this.chunks, this.size);
    return joined.length > TAIL_BYTES ? joined.subarray(joined.length - TAIL_BYTES) : joined;
  }
}

/** Object-valued keys that carry usage, and scalar keys worth taking along. */
const OBJECT_KEYS = ['usage', 'usageMetadata'] as const;
const SCALAR_KEYS = ['prompt_eval_count', 'eval_count', 'model', 'modelVersion', 'done'] as const;

/**
 * Characters `objectEnd` may scan for one key, over all the candidates it tries: a tail of
 * `"usage":{` repeated, none of them closed, once cost a scan to the end per candidate
 * (O(n²), half a second of a blocked event loop per answer). A real usage object closes
 * within a few hundred characters of its key.
 */
const SCAN_BUDGET = 2 * TAIL_BYTES;

/**
 * The end (exclusive) of the balanced JSON object starting at `start`, or -1; scanning
 * spends `budget.left`, and gives up (-1) when it runs out.
 */
function objectEnd(text: string, start: number, budget: { left: number }): number {
  let depth = 0;
  const stop = Math.min(text.length, start + budget.left);
  let i = start;
  for (; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string, honouring escapes.
      for (i++; i < stop; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) {
        budget.left -= i + 1 - start;
        return i + 1;
      }
    }
  }
  budget.left -= Math.min(i, stop) - start;
  return -1;
}

/** The value after the last `"key":` in the text, parsed, if it is whole. */
function lastValue(text: string, key: string, object: boolean): unknown {
  const marker = `"${key}"`;
  const budget = { left: SCAN_BUDGET };
  let at = text.lastIndexOf(marker);
  while (at !== -1 && budget.left > 0) {
    let i = at + marker.length;
    while (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x0a || text.charCodeAt(i) === 0x0d) i++;
    if (text[i] === ':') {
      i++;
      while (/\s/.test(text[i] ?? '')) i++;
      try {
        if (object) {
          if (text[i] === '{') {
            const end = objectEnd(text, i, budget);
            if (end !== -1) return JSON.parse(text.slice(i, end));
          }
        } else {
          const m = /^("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null)/.exec(text.slice(i, i + 512));
          if (m) return JSON.parse(m[1]!);
        }
      } catch {
        // a fragment that only looks like the key: try the one before
      }
    }
    at = at === 0 ? -1 : text.lastIndexOf(marker, at - 1);
  }
  return undefined;
}

/**
 * A small object with the usage-carrying fields found at the end of a body, in the body's
 * own shape, for the dialect's `usageFromJson`; undefined when none is there.
 */
export function usageShapeFromTail(tail: Buffer): Record<string, unknown> | undefined {
  const text = tail.toString('utf8');
  const found: Record<string, unknown> = {};
  for (const key of OBJECT_KEYS) {
    const value = lastValue(text, key, true);
    if (value !== undefined) found[key] = value;
  }
  for (const key of SCALAR_KEYS) {
    const value = lastValue(text, key, false);
    if (value !== undefined) found[key] = value;
  }
  const carriesUsage =
    OBJECT_KEYS.some((k) => k in found) || 'prompt_eval_count' in found || 'eval_count' in found;
  return carriesUsage ? found : undefined;
}
