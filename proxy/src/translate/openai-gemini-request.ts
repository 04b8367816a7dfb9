/**
 * An OpenAI Chat Completions request as a Gemini `generateContent` body. Messages become
 * `contents` (assistant -> role "model", tool results -> `functionResponse` parts in a user
 * turn) and every system or developer message joins `systemInstruction`. Tool schemas go in
 * `parametersJsonSchema` and json_schema formats in `responseJsonSchema`: both take plain
 * JSON Schema, where `parameters`/`responseSchema` take an OpenAPI subset that rejects
 * keywords OpenAI's strict schemas carry (`additionalProperties`, `$ref`...).
 *
 * Translated: messages, tools, tool_choice, stop, max_tokens/max_completion_tokens,
 * temperature, top_p, seed, presence_penalty, frequency_penalty, n (-> candidateCount),
 * response_format. Refused (semantics Gemini cannot keep): logprobs, top_logprobs,
 * logit_bias, audio, modalities, prediction, reasoning_effort, verbosity,
 * web_search_options, functions, function_call, parallel_tool_calls=false, and any field
 * we do not know. Dropped as harmless: see HARMLESS_FIELDS, plus a tool's `strict` and an
 * image's `detail`.
 */
import type { JsonBody } from '../dialects/dialect.js';
import { record, type JsonRecord } from '../dialects/json-value.js';
import {
  checkOpenAiFields,
  choiceCount,
  contentParts,
  historyToolCalls,
  maxOutputTokens,
  messagesOf,
  numberField,
  responseFormat,
  stopSequences,
  textContent,
  toolDefinitions,
  type ContentPart,
} from './openai-chat-request.js';
import { TranslationError } from './translator.js';

const UPSTREAM = 'Gemini';

/**
 * Joins a Gemini tool call id and its thought signature in the id the client sees. Gemini 3
 * rejects a replayed functionCall without the signature it came with, and an OpenAI client
 * keeps nothing but the id, so the signature rides inside it (as LiteLLM does).
 */
export const THOUGHT_SEPARATOR = '__thought__';

/**
 * Google's documented stand-in for a signature the client could not keep (a conversation
 * started elsewhere, or ids the client rewrote); only the first call of a turn needs one.
 */
const DUMMY_SIGNATURE = 'skip_thought_signature_validator';

type Part = JsonRecord;

interface Content {
  role: 'user' | 'model';
  parts: Part[];
}

const AUDIO_TYPES: Readonly<Record<string, string>> = { wav: 'audio/wav', mp3: 'audio/mp3' };

function geminiPart(part: ContentPart): Part {
  switch (part.kind) {
    case 'text':
      return { text: part.text };
    case 'image':
      return { inlineData: { mimeType: part.mimeType, data: part.data } };
    case 'audio': {
      const mimeType = AUDIO_TYPES[part.format];
      if (!mimeType) throw new TranslationError(`input_audio format ${part.format} cannot be translated`);
      return { inlineData: { mimeType, data: part.data } };
    }
  }
}

function splitSignature(id: string): { signature?: string } {
  const at = id.indexOf(THOUGHT_SEPARATOR);
  return at === -1 ? {} : { signature: id.slice(at + THOUGHT_SEPARATOR.length) };
}

/** The parts of one assistant message: its text, then one functionCall part per tool call. */
function assistantParts(message: JsonRecord, field: string, names: Map<string, string>): Part[] {
  const parts = contentParts(message.content, `${field}.content`, UPSTREAM)
    .filter((p) => p.kind !== 'text' || p.text !== '')
    .map(geminiPart);
  const calls = historyToolCalls(message, field, UPSTREAM);
  const signed = calls.some((call) => splitSignature(call.id).signature !== undefined);
  calls.forEach((call, i) => {
    names.set(call.id, call.name);
    const signature = splitSignature(call.id).signature ?? (!signed && i === 0 ? DUMMY_SIGNATURE : undefined);
    parts.push({
      functionCall: { name: call.name, args: call.args },
      ...(signature !== undefined ? { thoughtSignature: signature } : {}),
    });
  });
  return parts;
}

/**
 * A tool result as a functionResponse part. Gemini matches it by function NAME, looked up
 * from the assistant tool call with the same id. A JSON object result is sent as the
 * response itself; anything else as `{output: text}`, Gemini's documented key.
 */
function toolResponsePart(message: JsonRecord, field: string, names: Map<string, string>): Part {
  const id = message.tool_call_id;
  const name = typeof id === 'string' ? names.get(id) : undefined;
  if (name === undefined)
    throw new TranslationError(`${field}.tool_call_id does not match a tool call earlier in messages`);
  const output = textContent(message.content, `${field}.content`, UPSTREAM);
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    parsed = undefined;
  }
  return { functionResponse: { name, response: record(parsed) ?? { output } } };
}

interface Conversation {
  system: Part[];
  contents: Content[];
}

function addParts(contents: Content[], role: Content['role'], parts: Part[], merge: boolean): void {
  if (parts.length === 0) return;
  const last = contents[contents.length - 1];
  if (merge && last?.role === role) last.parts.push(...parts);
  else contents.push({ role, parts });
}

/**
 * Messages as Gemini contents. Consecutive tool results share one user turn, as Gemini wants
 * the answers to one turn's parallel calls together. System and developer messages, wherever
 * they stand, go to systemInstruction, the only place Gemini has for them.
 */
function conversation(body: JsonBody): Conversation {
  const system: Part[] = [];
  const contents: Content[] = [];
  const names = new Map<string, string>();
  let previous = '';
  messagesOf(body).forEach((message, i) => {
    const field = `messages[${i}]`;
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push({ text: textContent(message.content, `${field}.content`, UPSTREAM) });
        break;
      case 'user':
        addParts(
          contents,
          'user',
          contentParts(message.content, `${field}.content`, UPSTREAM).map(geminiPart),
          false,
        );
        break;
      case 'assistant':
        if (message.audio !== undefined && message.audio !== null)
          throw new TranslationError(`${field}.audio cannot be translated for ${UPSTREAM}`);
        addParts(contents, 'model', assistantParts(message, field, names), false);
        break;
      case 'tool':
        addParts(contents, 'user', [toolResponsePart(message, field, names)], previous === 'tool');
        break;
      default:
        throw new TranslationError(`${field}.role ${message.role} cannot be translated for ${UPSTREAM}`);
    }
    previous = message.role as string;
  });
  return { system, contents };
}

/** `tool_choice` as Gemini's functionCallingConfig. */
function toolConfig(choice: unknown): JsonRecord | undefined {
  if (choice === undefined || choice === null) return undefined;
  const modes: Readonly<Record<string, string>> = { auto: 'AUTO', none: 'NONE', required: 'ANY' };
  if (typeof choice === 'string' && modes[choice]) return { functionCallingConfig: { mode: modes[choice] } };
  const name = record(record(choice)?.function)?.name;
  if (record(choice)?.type === 'function' && typeof name === 'string')
    return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [name] } };
  throw new TranslationError(`tool_choice cannot be translated for ${UPSTREAM}`);
}

function generationConfig(body: JsonBody): JsonRecord {
  const config: JsonRecord = {};
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) config[key] = value;
  };
  set('stopSequences', stopSequences(body.stop));
  set('maxOutputTokens', maxOutputTokens(body));
  set('temperature', numberField(body, 'temperature'));
  set('topP', numberField(body, 'top_p'));
  set('seed', numberField(body, 'seed'));
  set('presencePenalty', numberField(body, 'presence_penalty'));
  set('frequencyPenalty', numberField(body, 'frequency_penalty'));
  const n = choiceCount(body);
  if (n > 1) config.candidateCount = n;
  const format = responseFormat(body.response_format);
  if (format.kind !== 'text') config.responseMimeType = 'application/json';
  if (format.kind === 'schema') config.responseJsonSchema = format.schema;
  return config;
}

/** The generateContent body for a chat.completions request. */
export function geminiChatBody(body: JsonBody): JsonBody {
  checkOpenAiFields(body, UPSTREAM);
  const { system, contents } = conversation(body);
  const out: JsonBody = { contents };
  if (system.length > 0) out.systemInstruction = { parts: system };
  const tools = toolDefinitions(body.tools, UPSTREAM);
  if (tools.length > 0)
    out.tools = [
      {
        functionDeclarations: tools.map((t) => ({
          name: t.name,
          ...(t.description !== undefined ? { description: t.description } : {}),
          ...(t.parameters ? { parametersJsonSchema: t.parameters } : {}),
        })),
      },
    ];
  const config = toolConfig(body.tool_choice);
  if (config) out.toolConfig = config;
  const generation = generationConfig(body);
  if (Object.keys(generation).length > 0) out.generationConfig = generation;
  return out;
}
