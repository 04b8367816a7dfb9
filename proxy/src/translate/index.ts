/**
 * The translator registry: which client dialect can be served by which upstream dialect.
 * A pair missing here is refused with 400 before the upstream is called.
 */
import { anthropicToOpenai } from './anthropic-openai.js';
import { openaiToAnthropic } from './openai-anthropic.js';
import { openaiToGemini } from './openai-gemini.js';
import { openaiToOllama } from './openai-ollama.js';
import type { Translator } from './translator.js';

const translators: readonly Translator[] = [
  openaiToAnthropic,
  openaiToGemini,
  openaiToOllama,
  anthropicToOpenai,
];

/** The translator from the client's dialect to the upstream's, if the pair is supported. */
export function translatorFor(client: string, upstream: string): Translator | undefined {
  return translators.find((t) => t.client === client && t.upstream === upstream);
}
